import type { Log } from '../lib/log.ts';
import type { Libc } from '../lib/libc.ts';
import { childrenOf, processState } from './proc.ts';

/**
 * Reaps orphans re-parented to the init (as PID 1 or as a subreaper) without stealing the
 * exit status of the children Node spawned itself: libuv waits for those with
 * waitpid(pid), and a waitpid(-1) here would make their `exit` events never fire.
 * So: peek with waitid(WNOWAIT) and reap only pids that are not ours; when the peek shows
 * one of ours, look for other zombies among our children in /proc instead.
 * Runs on SIGCHLD and on a slow timer (a SIGCHLD can be coalesced with another). A program that
 * forks thousands of short-lived orphans costs one debug line per timer tick, with the count,
 * not one per orphan.
 */
export class Reaper {
  readonly #libc: Libc;
  readonly #log: Log;
  readonly #owned: () => ReadonlySet<number>;
  #timer: NodeJS.Timeout | undefined;
  /** Reaped since the last report. */
  #reaped = 0;

  constructor(libc: Libc, log: Log, owned: () => ReadonlySet<number>) {
    this.#libc = libc;
    this.#log = log;
    this.#owned = owned;
  }

  start(intervalMs = 1000): void {
    process.on('SIGCHLD', this.reap);
    this.#timer = setInterval(() => (this.reap(), this.report()), intervalMs).unref();
  }

  stop(): void {
    process.off('SIGCHLD', this.reap);
    clearInterval(this.#timer);
    this.report();
  }

  /** One line for the orphans reaped since the last one (if any). */
  report(): void {
    if (this.#reaped === 0) return;
    this.#log.debug({ count: this.#reaped }, `reaped ${this.#reaped} orphaned processes`);
    this.#reaped = 0;
  }

  /** Reaps every exited orphan there is now; never blocks. */
  readonly reap = (): void => {
    const owned = this.#owned();
    for (let i = 0; i < 10_000; i++) {
      const pid = this.#libc.peekExited();
      if (pid <= 0) return;
      if (owned.has(pid)) {
        this.#reapFromProc(owned);
        return;
      }
      this.#reapOne(pid);
    }
  };

  #reapOne(pid: number): void {
    if (this.#libc.reap(pid)) this.#reaped++;
  }

  /** Zombies among our children other than the ones Node is about to wait for itself. */
  #reapFromProc(owned: ReadonlySet<number>): void {
    for (const pid of childrenOf(process.pid)) {
      if (!owned.has(pid) && processState(pid) === 'Z') this.#reapOne(pid);
    }
  }
}
