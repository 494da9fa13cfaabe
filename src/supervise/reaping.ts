import type { Log } from '../lib/log.ts';
import { libc } from '../lib/libc.ts';
import { childrenOf, processState } from './proc.ts';
import { Reaper } from './reap.ts';

export interface ReapingOptions {
  log: Log;
  /** --subreaper: become the reaper of our descendants even when not PID 1. */
  subreaper: boolean;
  owned: () => ReadonlySet<number>;
  intervalMs?: number;
}

/**
 * Orphans are re-parented to PID 1 (or to the nearest subreaper). As PID 1, or with
 * --subreaper, the init reaps them; otherwise whoever is PID 1 does, and we say so.
 */
export function startReaping(options: ReapingOptions): Reaper | undefined {
  const { log } = options;
  const pid1 = process.pid === 1;
  if (!pid1 && !options.subreaper) {
    log.info('not PID 1 and no --subreaper: orphaned descendants will not be reaped by tee-init');
    return undefined;
  }
  try {
    const c = libc();
    if (!pid1) {
      c.setSubreaper();
      process.prependOnceListener('exit', () => endAdopted(log, options.owned()));
    }
    const reaper = new Reaper(c, log, options.owned);
    reaper.start(options.intervalMs);
    log.debug({ pid1, subreaper: !pid1 }, 'reaping orphans');
    return reaper;
  } catch (err) {
    // Reaping is hygiene, not a reason to refuse to run the workload.
    log.warn({ err }, 'cannot reap orphans: zombies may accumulate');
    return undefined;
  }
}

/**
 * As PID 1, the kernel SIGKILLs every process left in the namespace when the init exits. As a
 * subreaper, what the programs left behind (orphans it adopted: daemonized helpers, background
 * jobs) would outlive it instead, under whoever is PID 1 (a pod's pause container, a host's
 * systemd): they get the same SIGKILL, from the 'exit' hook. Every one of them is our child and
 * not yet reaped, so its pid is still its own.
 */
/** How long the exit waits for the SIGKILLed leftovers to die. */
const KILL_WAIT_MS = 1_000;

function endAdopted(log: Log, owned: ReadonlySet<number>): void {
  const left = childrenOf(process.pid).filter((pid) => !owned.has(pid) && processState(pid) !== 'Z');
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  // Like the kernel for a PID 1, wait until they are dead (zombies, ours until we exit): when the
  // init's exit is seen, nothing it adopted still runs. Bounded: one stuck in D state won't hold us.
  const deadline = Date.now() + KILL_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let running = left;
  while (running.length > 0 && Date.now() < deadline) {
    Atomics.wait(pause, 0, 0, 2); // the 'exit' hook is synchronous: a short sleep, not a timer
    running = running.filter((pid) => !['Z', 'X', undefined].includes(processState(pid)));
  }
  if (left.length > 0) log.warn({ count: left.length, pids: left.slice(0, 10) }, `${left.length} processes left behind by the programs got SIGKILL as tee-init exits (as PID 1 the kernel would do the same)`);
  if (running.length > 0) log.warn({ pids: running.slice(0, 10) }, `${running.length} of them had not died ${KILL_WAIT_MS} ms later (uninterruptible sleep?): they end when the kernel lets them`);
}
