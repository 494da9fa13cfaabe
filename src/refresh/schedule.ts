// When the next refresh happens. Pure functions of the config and a random draw, so the schedule
// is tested without waiting for it.
import type { RefreshConfig } from '../config/schema-refresh.ts';

/** The first retry after a failure; then doubling, never later than the regular schedule. */
export const RETRY_INITIAL_MS = 30_000;

/**
 * After a good refresh (or the boot): `every`, minus up to `jitter` of it at random. Never later
 * than `every`, so a maxStale computed from `every` holds whatever the draw.
 */
export function nextDelayMs(config: Pick<RefreshConfig, 'every' | 'jitter'>, random: () => number): number {
  return Math.max(1, Math.round(config.every * (1 - config.jitter * random())));
}

/** After `failures` failed refreshes in a row (1 or more): 30 s, 60 s, 2 min… at most `every`. */
export function retryDelayMs(config: Pick<RefreshConfig, 'every'>, failures: number): number {
  return Math.min(config.every, RETRY_INITIAL_MS * 2 ** Math.min(failures - 1, 20));
}

/**
 * Whether a source failing since `lastGoodAt` has now been stale for too long (maxStale): the
 * init then ends with 69. Never, without maxStale.
 */
export function staleTooLong(config: Pick<RefreshConfig, 'maxStale'>, lastGoodAt: number, now: number): boolean {
  return config.maxStale !== undefined && now - lastGoodAt >= config.maxStale;
}
