import type { Log } from '../log.ts';
import { libc } from './libc.ts';
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
    if (!pid1) c.setSubreaper();
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
