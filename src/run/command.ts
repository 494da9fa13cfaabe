// Commands run beside a program, as that program (its user, its environment): readiness checks
// (ready.exec) and reloads (reload.exec). Each must exit 0 within its time. Its output goes to
// /dev/null: it is for it alone, kept out of the init's and the program's streams (and so out of
// the logs), and no descendant can keep the check from ending by holding a pipe open.
// Each runs in a process group of its own, so a timeout or a stop reaches what it started too,
// and the unit's stop waits until every one of them has exited: no process the init started
// outlives the init (issue 18, point 7).
import type { Log } from '../lib/log.ts';
import { Child, type ChildSpec } from '../supervise/child.ts';

export interface CommandsContext {
  /** The program's user, environment and working directory. */
  child: Omit<ChildSpec, 'argv'>;
  /** Pids Node waits for itself, shared with the reaper: it must not take a command's status. */
  owned: Set<number>;
  log: Log;
  /** The unit's stop: every running command gets SIGTERM, SIGKILL after `graceMs`. */
  stop: AbortSignal;
  graceMs: number;
}

export class Commands {
  readonly #ctx: CommandsContext;
  /** Every run() not finished yet (from before its spawn: a stop never misses one). */
  readonly #running = new Set<Promise<unknown>>();

  constructor(ctx: CommandsContext) {
    this.#ctx = ctx;
  }

  /**
   * Runs `argv`; resolves undefined when it exited 0, else a short reason ("exit 1", "killed by
   * SIGTERM", "did not finish within 5s", "cannot run ..."). `signal` ends it early like the
   * unit's stop does (SIGTERM, then SIGKILL after the grace period). Never rejects.
   */
  run(argv: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<string | undefined> {
    const running = this.#run(argv, timeoutMs, signal);
    this.#running.add(running);
    void running.finally(() => this.#running.delete(running));
    return running;
  }

  async #run(argv: readonly string[], timeoutMs: number, signal: AbortSignal | undefined): Promise<string | undefined> {
    const { owned, log, graceMs } = this.#ctx;
    const stop = signal ? AbortSignal.any([this.#ctx.stop, signal]) : this.#ctx.stop;
    if (stop.aborted) return 'not run: stopping';
    let child: Child;
    try {
      child = await Child.spawn({ ...this.#ctx.child, argv }, { log, signalGroup: true, output: 'ignore' });
    } catch (err) {
      return (err as Error).message;
    }
    owned.add(child.pid);
    let timedOut = false;
    // The whole group: a shell's background jobs go with it.
    const timer = setTimeout(() => ((timedOut = true), child.send('SIGKILL')), timeoutMs);
    const onStop = () => {
      child.deliver('SIGTERM', true);
      child.armKill(graceMs);
    };
    stop.addEventListener('abort', onStop, { once: true });
    if (stop.aborted) onStop(); // aborted while it was being spawned
    try {
      const exit = await child.exit;
      sweepGroup(child.pid);
      if (timedOut) return `did not finish within ${Math.round(timeoutMs)} ms`;
      if (exit.code === 0) return undefined;
      return exit.signal ? `killed by ${exit.signal}${stop.aborted ? ' (tee-init is stopping)' : ''}` : `exit ${exit.code}`;
    } finally {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
      owned.delete(child.pid);
    }
  }

  /** Resolves once every command started so far has exited (and its group been swept). */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.all(this.#running);
  }
}

/**
 * What the command left running in its group (a shell's background job) ends with it. Sent as
 * the leader is reaped: pids are handed out cyclically, so its number (the group's id) cannot
 * name another process group by then. A descendant that left the group (setsid) is out of reach.
 */
function sweepGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: nothing was left.
  }
}
