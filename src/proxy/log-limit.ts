// Per-connection failures (a failed handshake, a backend that is down) are logged one line
// each, but a port scanner or a crash-looping backend must not become a log flood (serial
// consoles are slow, Cloud Logging bills by volume): at most `burst` lines per window for each
// kind of failure, then one line per window saying how many more there were.
import type { Log } from '../log.ts';

export interface LogLimit {
  burst: number;
  windowMs: number;
}

export const LOG_LIMIT_DEFAULTS: LogLimit = { burst: 20, windowMs: 60_000 };

export type LimitedWarn = (fields: Record<string, unknown>, message: string) => void;

/** A warn() that keeps to `limit`; `kind` names the failure in the summary line. */
export function limitedWarn(log: Log, kind: string, limit: LogLimit): LimitedWarn {
  let windowStart = -Infinity;
  let logged = 0;
  let suppressed = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (suppressed === 0) return;
    log.warn({ kind, suppressed, windowMs: limit.windowMs }, `${kind}: ${suppressed} more in the last ${limit.windowMs / 1000}s, not logged one by one`);
    suppressed = 0;
  };
  return (fields, message) => {
    const now = performance.now();
    if (now - windowStart >= limit.windowMs) {
      flush();
      windowStart = now;
      logged = 0;
    }
    if (logged < limit.burst) {
      logged++;
      log.warn(fields, message);
      return;
    }
    suppressed++;
    timer ??= setTimeout(flush, windowStart + limit.windowMs - now).unref();
  };
}
