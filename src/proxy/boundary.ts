// The failure boundary of one connection (docs/design.md, "Failure rules"). tee-init is PID 1:
// a throw that escapes a listener's event handler would end the init (or, in a worker thread,
// the thread and every bystander on it). So every handler a listener registers for a
// connection's events runs inside guard(): a throw ends that connection only, is counted, and
// is logged through a limiter (a peer that can trigger it must not flood the log either).
// This is the second line: values from the network are validated or encoded at their root first.
import type { Log } from '../lib/log.ts';
import { type LimitedWarn, LOG_LIMIT_DEFAULTS, limitedWarn, type LogLimit } from '../lib/log-limit.ts';

/** Something a fault must end: a socket, a request, a stream, a session. */
export interface Destroyable {
  destroy(err?: Error): unknown;
}

export interface FaultSink {
  /** Ends `victims` (one connection's parts), counts and logs (rate-limited) the fault. */
  (err: unknown, fields: Record<string, unknown>, ...victims: (Destroyable | undefined)[]): void;
  /** Faults contained so far (`connection_faults_total`). */
  readonly count: number;
}

/** One per listener: `label` prefixes the log line (`tls`, `listener mesh-in`). */
export function createFaultSink(log: Log, label: string, limit: Partial<LogLimit> = {}): FaultSink {
  const warn: LimitedWarn = limitedWarn(log, `${label} connection faults`, { ...LOG_LIMIT_DEFAULTS, ...limit });
  let count = 0;
  const sink = (err: unknown, fields: Record<string, unknown>, ...victims: (Destroyable | undefined)[]) => {
    count++;
    for (const v of victims) {
      try {
        v?.destroy();
      } catch {
        // already torn down: nothing more to end
      }
    }
    // The message, never the value that caused it: it may hold a peer's bytes or a token.
    const reason = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.name) : typeof err;
    warn({ ...fields, reason }, `${label}: a connection was ended by a fault in its handling (the listener keeps serving)`);
  };
  Object.defineProperty(sink, 'count', { get: () => count });
  return sink as FaultSink;
}

/**
 * `fn` as an event handler that cannot throw past itself: a synchronous throw or a rejected
 * promise goes to `onFault` (which ends the connection the handler served).
 */
export function guard<A extends unknown[]>(onFault: (err: unknown, ...args: A) => void, fn: (...args: A) => unknown): (...args: A) => void {
  return (...args: A) => {
    try {
      const r = fn(...args);
      if (r instanceof Promise) r.catch((err: unknown) => onFault(err, ...args));
    } catch (err) {
      onFault(err, ...args);
    }
  };
}
