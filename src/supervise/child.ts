// One supervised child process: spawn it in its own session, deliver signals the way an init
// must (job-control rewrite, waking a stopped child for a stop signal), keep its exit status,
// and SIGKILL it after a grace period. The one way the init runs a program: each process unit
// of the run stage (src/run/process-unit.ts; run: is one) and the commands beside it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { processState, signalDisposition } from './proc.ts';
import { JOB_CONTROL_SIGNALS, signalNumber } from '../lib/signals.ts';

/** What to run: already rendered; nothing here is a template any more. */
export interface ChildSpec {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  cwd?: string | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
}

export interface ChildExit {
  /** The init's exit status: the child's code, or 128+N when signal N killed it. */
  status: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildOptions {
  /** Bound with whatever names this child in the init's log (e.g. `{ unit }`). */
  log: Log;
  /** Send signals to the child's process group rather than the child alone. */
  signalGroup: boolean;
  /** Its stdin/stdout/stderr: the init's own (default), or /dev/null (commands beside a program). */
  output?: 'inherit' | 'ignore' | undefined;
}

/**
 * Children not reaped yet. The stop paths end every one of them before the init exits; should
 * the init ever exit with some still running (a bug that skipped the stop), its 'exit' hook
 * SIGKILLs them (each group, with --signal-group) rather than leave them to outlive it. Their
 * pids are still theirs: Node has not reaped them.
 */
const live = new Set<Child>();
function killLive(): void {
  for (const child of live) child.send('SIGKILL');
}

export class Child {
  readonly pid: number;
  /** Resolves once the child has exited (never rejects). */
  readonly exit: Promise<ChildExit>;
  readonly #proc: ChildProcess;
  readonly #log: Log;
  readonly #signalGroup: boolean;
  #alive = true;
  #killTimer: NodeJS.Timeout | undefined;

  private constructor(proc: ChildProcess, options: ChildOptions) {
    this.#proc = proc;
    this.pid = proc.pid!;
    this.#log = options.log;
    this.#signalGroup = options.signalGroup;
    if (live.size === 0) process.prependOnceListener('exit', killLive); // first: before the wipe
    live.add(this);
    this.exit = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        live.delete(this);
        if (live.size === 0) process.off('exit', killLive);
        this.#alive = false;
        clearTimeout(this.#killTimer);
        resolve({ status: code ?? 128 + signalNumber(signal!), code, signal });
      });
    });
    // Errors after a successful spawn (e.g. kill() failing) must not become uncaught.
    proc.on('error', (err) => this.#log.warn({ err }, 'child process error'));
  }

  /**
   * Starts `spec`. Resolves once it runs; rejects with an InitError: 127 (not found), 126 (not
   * executable), 78 (empty command).
   */
  static async spawn(spec: ChildSpec, options: ChildOptions): Promise<Child> {
    const [file, ...args] = spec.argv;
    if (file === undefined || file === '') throw new InitError(EXIT.config, 'the command to run is empty');
    let proc: ChildProcess;
    try {
      proc = spawn(file, args, {
        stdio: options.output ?? 'inherit',
        env: spec.env,
        cwd: spec.cwd,
        uid: spec.uid,
        gid: spec.gid,
        // Own session and process group: terminal-generated signals reach only the init,
        // which forwards each exactly once, and --signal-group has a group to address.
        detached: true,
      });
    } catch (err) {
      // Refused before a process existed: a name or argument list the kernel will not take.
      throw execError(file, err as NodeJS.ErrnoException, spec);
    }
    if (proc.pid === undefined) {
      const [err] = (await once(proc, 'error')) as [NodeJS.ErrnoException];
      throw execError(file, err, spec);
    }
    return new Child(proc, options);
  }

  /** True until the exit event (Node has reaped it: a recycled pid is never signalled). */
  get alive(): boolean {
    return this.#alive;
  }

  /** Sends `signal` as is (to the group with --signal-group); false when nothing was there. */
  send(signal: NodeJS.Signals): boolean {
    if (!this.#alive) return false;
    try {
      // child.kill() does nothing once Node has reaped the child, so a recycled pid is never hit.
      if (!this.#signalGroup) return this.#proc.kill(signal);
      process.kill(-this.pid, signal);
      return true;
    } catch {
      return false; // ESRCH: the group is already gone; the exit event is on its way.
    }
  }

  /**
   * Delivers a forwarded signal. `wake`: the signal means "stop", and a stopped child would keep
   * it pending forever, so it also gets SIGCONT.
   */
  deliver(signal: NodeJS.Signals, wake: boolean): boolean {
    const sent = this.send(this.#asDelivered(signal));
    this.#log.debug({ signal, pid: this.pid, group: this.#signalGroup, sent }, `forwarded ${signal}`);
    if (sent && wake && processState(this.pid) === 'T') this.send('SIGCONT');
    return sent;
  }

  /**
   * The child runs in its own session, so its process group is "orphaned" and the kernel
   * discards SIGTSTP/SIGTTIN/SIGTTOU whose default action would stop it. To keep their meaning
   * ("stop"), a child that neither catches nor ignores one gets SIGSTOP instead; a child that
   * handles it gets the signal itself.
   */
  #asDelivered(signal: NodeJS.Signals): NodeJS.Signals {
    if (!JOB_CONTROL_SIGNALS.has(signal)) return signal;
    return signalDisposition(this.pid, signalNumber(signal)) === 'default' ? 'SIGSTOP' : signal;
  }

  /** SIGKILL after `graceMs` unless it exits first. Only the first call arms; returns whether this one did. */
  armKill(graceMs: number): boolean {
    if (this.#killTimer || !this.#alive) return false;
    this.#killTimer = setTimeout(() => {
      if (!this.#alive) return;
      this.#log.warn({ gracePeriodMs: graceMs, pid: this.pid }, 'grace period over: sending SIGKILL');
      this.send('SIGKILL');
    }, graceMs);
    return true;
  }
}

/** What the kernel's refusals mean for whoever wrote the command. */
const SPAWN_REFUSED: Record<string, string> = {
  EACCES: 'permission denied (not executable, or a directory)',
  ENAMETOOLONG: 'the command name or path is too long for the kernel (ENAMETOOLONG)',
  E2BIG: 'the arguments and environment are too large for the kernel (E2BIG: at most 128 KiB per argument, ~2 MiB in all)',
  EINVAL: 'the command, an argument or the environment is invalid (EINVAL: a NUL byte?)',
  EPERM: 'not permitted to switch to the configured user (EPERM: tee-init is not root?)',
  ERR_INVALID_ARG_VALUE: 'an argument or environment value contains a NUL byte',
};

function execError(file: string, err: NodeJS.ErrnoException, spec: ChildSpec): InitError {
  const path = spec.env.PATH;
  const where = file.includes('/') ? '' : ` (searched PATH=${path ?? ''})`;
  // The working directory first: the kernel's answer for it looks like one about the program.
  if (spec.cwd !== undefined && (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'ENOTDIR')) {
    let isDir = false;
    try {
      isDir = statSync(spec.cwd).isDirectory();
    } catch {
      // missing
    }
    if (!isDir) return new InitError(EXIT.config, `cannot run ${JSON.stringify(file)}: its working directory ${spec.cwd} does not exist or is not a directory (workingDir)`);
  }
  // execvp says EACCES when the program is nowhere on PATH but some directory of PATH cannot be
  // searched by the program's user: that is "not found", and the person needs to know where.
  const onPath = !file.includes('/') && (path ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, file)));
  if (err.code === 'ENOENT' || (err.code === 'EACCES' && !file.includes('/') && !onPath)) {
    const unsearchable = err.code === 'EACCES' ? '; some of these directories cannot be searched by the program\'s user' : '';
    return new InitError(EXIT.notFound, `cannot run ${JSON.stringify(file)}: command not found${where}${unsearchable}`);
  }
  const why = SPAWN_REFUSED[err.code ?? ''] ?? `${err.code ?? err.message}`;
  const name = file.length > 200 ? `${JSON.stringify(file.slice(0, 200))}... (${file.length} characters)` : JSON.stringify(file);
  const cwdHint = err.code === 'EACCES' && spec.cwd !== undefined && spec.uid !== undefined ? ` (or its user, uid ${spec.uid}, cannot enter its working directory ${spec.cwd})` : '';
  return new InitError(EXIT.notExecutable, `cannot run ${name}: ${why}${where}${cwdHint}`, { code: err.code });
}
