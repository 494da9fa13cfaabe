// Per-connection failures (a failed handshake, a backend that is down) are logged one line
// each, but a port scanner or a crash-looping backend must not become a log flood (serial
// consoles are slow, Cloud Logging bills by volume): at most `burst` lines per window for each
// kind of failure, then one line per window saying how many more there were. The budget is the
// listener's, whatever number of worker threads serve it (./thread.ts).
import type { Log } from './log.ts';
import { listenerLimits, localLimits, type LogSlot } from './thread.ts';

export interface LogLimit {
  burst: number;
  windowMs: number;
}

export const LOG_LIMIT_DEFAULTS: LogLimit = { burst: 20, windowMs: 60_000 };

export type LimitedWarn = (fields: Record<string, unknown>, message: string) => void;

/** A warn() that keeps to `limit`; `kind` names the failure in the summary line. */
export function limitedWarn(log: Log, kind: string, limit: LogLimit): LimitedWarn {
  let limits = listenerLimits();
  let shared = limits.logSlot(kind);
  // All slots taken (a type with very many kinds): this kind gets a budget of this thread's own.
  if (!shared) shared = (limits = localLimits()).logSlot(kind)!;
  const slot: LogSlot = shared;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const suppressed = slot.takeSuppressed();
    if (suppressed === 0) return;
    log.warn({ kind, suppressed, windowMs: limit.windowMs }, `${kind}: ${suppressed} more in the last ${limit.windowMs / 1000}s, not logged one by one`);
  };
  return (fields, message) => {
    const now = limits.now();
    const start = slot.windowStart;
    // One thread moves the window on and says how many the last one suppressed. The first line
    // starts the first window (0: none yet).
    if ((start === 0 || now - start >= limit.windowMs) && slot.roll(start, Math.max(1, now))) flush();
    if (slot.take(limit.burst)) {
      log.warn(fields, message);
      return;
    }
    timer ??= setTimeout(flush, Math.max(0, slot.windowStart + limit.windowMs - now)).unref();
  };
}
