import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { takeEarlySignals } from '../early-signals.ts';
import { AbortedBySignal, InitError } from '../errors.ts';
import { EXIT } from '../exit-codes.ts';
import type { Log } from '../log.ts';
import { processState, signalDisposition } from './proc.ts';
import { FORWARDED_SIGNALS, JOB_CONTROL_SIGNALS, STOP_SIGNALS, signalNumber } from './signals.ts';

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

export interface SupervisorOptions {
  log: Log;
  gracePeriodMs: number;
  /** Send forwarded signals to the child's process group rather than the child alone. */
  signalGroup: boolean;
}

type Phase = 'bootstrap' | 'running' | 'exiting';

/**
 * The init's signal and child state machine.
 *  bootstrap: no child yet. SIGTERM/SIGINT abort the bootstrap (abortSignal fires);
 *             every other signal is logged and dropped.
 *  running:   every forwarded signal goes to the child; SIGTERM/SIGINT also arm a SIGKILL
 *             after the grace period.
 *  exiting:   the child is gone; signals are ignored while the init finishes its exit.
 * Listeners are installed at construction so no signal ever meets a default action in
 * between (a default action would kill the init, or, as PID 1, silently drop the signal).
 */
export class Supervisor {
  readonly #log: Log;
  /** Settable until the child is stopped: the config may set it after construction. */
  gracePeriodMs: number;
  readonly #signalGroup: boolean;
  readonly #abort = new AbortController();
  #phase: Phase = 'bootstrap';
  #child: ChildProcess | undefined;
  #exit: Promise<ChildExit> | undefined;
  #killTimer: NodeJS.Timeout | undefined;

  constructor(options: SupervisorOptions) {
    this.#log = options.log;
    this.gracePeriodMs = options.gracePeriodMs;
    this.#signalGroup = options.signalGroup;
    for (const sig of FORWARDED_SIGNALS) process.on(sig, this.#onSignal);
    // Signals that arrived while the init was loading: acted on now, in order, as bootstrap ones.
    for (const sig of takeEarlySignals()) this.#onSignal(sig);
  }

  /** Fires (with an AbortedBySignal reason) when SIGTERM/SIGINT arrives during bootstrap. */
  get abortSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /** True while the child exists. */
  get running(): boolean {
    return this.#phase === 'running';
  }

  /** Pids whose exit Node waits for itself; the reaper must leave them alone. */
  ownedPids(): ReadonlySet<number> {
    const pid = this.#phase === 'running' ? this.#child?.pid : undefined;
    return new Set(pid === undefined ? [] : [pid]);
  }

  /**
   * Starts the child. Resolves with its pid once it runs; rejects with exit status 127/126
   * when the command cannot be found or executed. Signals arriving from here on are
   * delivered to the child.
   */
  async spawn(spec: ChildSpec): Promise<number> {
    if (this.#phase !== 'bootstrap') throw new Error('spawn() called twice');
    // A signal that reached the process before now is a bootstrap signal, even if Node has
    // not dispatched it yet (signals reach listeners on the next turn of the event loop).
    await new Promise((resolve) => setImmediate(resolve));
    if (this.#abort.signal.aborted) throw this.#abort.signal.reason;
    const [file, ...args] = spec.argv;
    if (file === undefined || file === '') throw new InitError(EXIT.config, 'the command to run is empty');

    let child: ChildProcess;
    try {
      child = spawnChild(file, args, spec);
    } catch (err) {
      // Refused before a process existed: a name or argument list the kernel will not take.
      throw execError(file, err as NodeJS.ErrnoException, spec.env.PATH);
    }
    if (child.pid === undefined) {
      const [err] = (await once(child, 'error')) as [NodeJS.ErrnoException];
      throw execError(file, err, spec.env.PATH);
    }
    this.#child = child;
    this.#phase = 'running';
    this.#exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#phase = 'exiting';
        clearTimeout(this.#killTimer);
        resolve({ status: code ?? 128 + signalNumber(signal!), code, signal });
      });
    });
    // Errors after a successful spawn (e.g. kill() failing) must not become uncaught.
    child.on('error', (err) => this.#log.warn({ err }, 'child process error'));
    return child.pid;
  }

  /** Resolves when the child has exited. */
  wait(): Promise<ChildExit> {
    if (!this.#exit) throw new Error('wait() before spawn()');
    return this.#exit;
  }

  /** Asks the child to stop as a SIGTERM from outside would: TERM, then KILL after the grace period. */
  stop(reason: string): void {
    if (this.#phase !== 'running') return;
    this.#log.warn({ reason }, 'stopping the child');
    this.#onSignal('SIGTERM');
  }

  /** Removes the signal listeners (tests and in-process embedding only). */
  dispose(): void {
    for (const sig of FORWARDED_SIGNALS) process.off(sig, this.#onSignal);
    clearTimeout(this.#killTimer);
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    switch (this.#phase) {
      case 'bootstrap':
        if (STOP_SIGNALS.has(signal)) {
          if (!this.#abort.signal.aborted) {
            this.#log.info({ signal }, `${signal} before the child started: aborting bootstrap`);
            this.#abort.abort(new AbortedBySignal(signal as 'SIGINT' | 'SIGTERM'));
          }
        } else {
          this.#log.info({ signal }, `${signal} before the child started: dropped`);
        }
        return;
      case 'running':
        this.#forward(signal);
        if (STOP_SIGNALS.has(signal)) this.#armKill(signal);
        return;
      case 'exiting':
        this.#log.debug({ signal }, `${signal} after the child exited: ignored`);
        return;
    }
  };

  #send(signal: NodeJS.Signals): boolean {
    const child = this.#child!;
    try {
      // child.kill() does nothing once Node has reaped the child, so a recycled pid is never hit.
      if (!this.#signalGroup) return child.kill(signal);
      process.kill(-child.pid!, signal);
      return true;
    } catch {
      return false; // ESRCH: the group is already gone; the exit event is on its way.
    }
  }

  #forward(signal: NodeJS.Signals): void {
    const pid = this.#child!.pid!;
    const sent = this.#send(this.#asDelivered(signal, pid));
    this.#log.debug({ signal, pid, group: this.#signalGroup, sent }, `forwarded ${signal}`);
    // A stopped child would keep a TERM pending forever; wake it so it can act on it.
    if (sent && STOP_SIGNALS.has(signal) && processState(pid) === 'T') this.#send('SIGCONT');
  }

  /**
   * The child runs in its own session, so its process group is "orphaned" and the kernel
   * discards SIGTSTP/SIGTTIN/SIGTTOU whose default action would stop it. To keep their meaning
   * ("stop"), a child that neither catches nor ignores one gets SIGSTOP instead; a child that
   * handles it gets the signal itself.
   */
  #asDelivered(signal: NodeJS.Signals, pid: number): NodeJS.Signals {
    if (!JOB_CONTROL_SIGNALS.has(signal)) return signal;
    return signalDisposition(pid, signalNumber(signal)) === 'default' ? 'SIGSTOP' : signal;
  }

  #armKill(signal: NodeJS.Signals): void {
    if (this.#killTimer) return;
    this.#log.info(
      { signal, gracePeriodMs: this.gracePeriodMs },
      `${signal} forwarded; the child gets SIGKILL if still running after ${this.gracePeriodMs} ms`,
    );
    this.#killTimer = setTimeout(() => {
      if (this.#phase !== 'running') return;
      this.#log.warn({ gracePeriodMs: this.gracePeriodMs }, 'grace period over: sending SIGKILL');
      this.#send('SIGKILL');
    }, this.gracePeriodMs);
  }
}

function spawnChild(file: string, args: string[], spec: ChildSpec): ChildProcess {
  return spawn(file, args, {
    stdio: 'inherit',
    env: spec.env,
    cwd: spec.cwd,
    uid: spec.uid,
    gid: spec.gid,
    // Own session and process group: terminal-generated signals reach only the init,
    // which forwards each exactly once, and --signal-group has a group to address.
    detached: true,
  });
}

/** What the kernel's refusals mean for whoever wrote the command. */
const SPAWN_REFUSED: Record<string, string> = {
  EACCES: 'permission denied (not executable, or a directory)',
  ENAMETOOLONG: 'the command name or path is too long for the kernel (ENAMETOOLONG)',
  E2BIG: 'the arguments and environment are too large for the kernel (E2BIG: at most 128 KiB per argument, ~2 MiB in all)',
  EINVAL: 'the command, an argument or the environment is invalid (EINVAL: a NUL byte?)',
  EPERM: 'not permitted to switch to run.user (EPERM: tee-init is not root?)',
  ERR_INVALID_ARG_VALUE: 'an argument or environment value contains a NUL byte',
};

function execError(file: string, err: NodeJS.ErrnoException, path: string | undefined): InitError {
  const where = file.includes('/') ? '' : ` (searched PATH=${path ?? ''})`;
  if (err.code === 'ENOENT') {
    return new InitError(EXIT.notFound, `cannot run ${JSON.stringify(file)}: command not found${where}`);
  }
  const why = SPAWN_REFUSED[err.code ?? ''] ?? `${err.code ?? err.message}`;
  const name = file.length > 200 ? `${JSON.stringify(file.slice(0, 200))}... (${file.length} characters)` : JSON.stringify(file);
  return new InitError(EXIT.notExecutable, `cannot run ${name}: ${why}${where}`, { code: err.code });
}

