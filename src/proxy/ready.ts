// Waits for the supervised program's port before a listener opens: the child takes a
// moment to start, and a client let in before that would only see its connection dropped.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { formatHostPort, type HostPort } from '../lib/address.ts';

export interface ReadyOptions {
  /** Give up after this long (exit 69). Default 30 s. */
  timeoutMs?: number;
  /** Pause between attempts. Default 50 ms. */
  intervalMs?: number;
  /** Prefixes log messages (default `psk`). */
  label?: string;
  /** The config field the target comes from, for the error (default `psk.connect`). */
  field?: string;
}

export const READY_DEFAULTS = { timeoutMs: 30_000, intervalMs: 50 } as const;

/**
 * Resolves once `target` accepts a TCP connection (closed again at once). Rejects with
 * `signal.reason` when aborted, or an InitError (exit 69) at the deadline.
 */
export async function waitForPort(target: HostPort, log: Log, options: ReadyOptions & { signal?: AbortSignal } = {}): Promise<void> {
  const { timeoutMs = READY_DEFAULTS.timeoutMs, intervalMs = READY_DEFAULTS.intervalMs, signal, label = 'psk', field = 'psk.connect' } = options;
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let attempts = 0;
  let last: Error | undefined;
  for (;;) {
    signal?.throwIfAborted();
    attempts++;
    const left = deadline - performance.now();
    try {
      await probe(target, Math.max(1, Math.min(left, 1000)), signal);
      log.debug({ target: formatHostPort(target), attempts, ms: Math.round(performance.now() - t0) }, `${label} upstream accepts connections`);
      return;
    } catch (err) {
      signal?.throwIfAborted();
      last = err as Error;
      if (attempts === 1) log.debug({ target: formatHostPort(target), reason: code(last) }, `${label} upstream not ready yet; polling`);
    }
    if (performance.now() + intervalMs > deadline) break;
    await sleep(intervalMs, undefined, signal ? { signal } : {});
  }
  throw new InitError(
    EXIT.unavailable,
    `${field} ${formatHostPort(target)} did not accept a connection within ${timeoutMs} ms (${code(last)}); is the program listening there?`,
    { target: formatHostPort(target), attempts, reason: code(last) },
  );
}

function probe(target: HostPort, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    const done = (err?: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => done(signal!.reason as Error);
    const timer = setTimeout(() => done(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done());
    socket.once('error', done);
  });
}

function code(err: Error | undefined): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? err?.message ?? 'unknown';
}
