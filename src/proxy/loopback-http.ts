// What the http-proxy and metadata listeners share: an HTTP server that may listen on loopback
// only (it hands out tokens to whoever connects; the config's rule: src/config/listeners/loopback.ts),
// a deadline for a request's head, and a close that does not wait for keep-alive.
import { once } from 'node:events';
import { createServer, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { isLoopbackHost } from '../config/endpoints.ts';
import { configError } from '../lib/errors.ts';
import type { Log } from '../lib/log.ts';
import { parseHostPort } from '../lib/address.ts';
import { guard, type FaultSink } from './boundary.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn } from '../lib/log-limit.ts';
import type { HostPort } from './listener.ts';
import { accepting } from '../lib/thread.ts';

/** How often Node checks the head (and request) deadlines: a trickling client is cut within this past its deadline. */
export const DEADLINE_CHECK_MS = 1_000;

/**
 * An HTTP server whose deadlines are enforced: `headersTimeoutMs` for a request's head (header
 * lines trickled one by one do not extend it), `requestTimeoutMs` for the whole request (0: none,
 * where bodies may stream for long). Node's default check runs only every 30 s.
 */
export function boundedHttpServer(headersTimeoutMs: number, requestTimeoutMs: number): Server {
  const options: ServerOptions = {
    headersTimeout: headersTimeoutMs,
    requestTimeout: requestTimeoutMs === 0 ? 0 : Math.max(requestTimeoutMs, headersTimeoutMs),
    connectionsCheckingInterval: Math.min(DEADLINE_CHECK_MS, headersTimeoutMs),
    keepAliveTimeout: 5_000,
  };
  return createServer(options);
}

/**
 * Binds `listen`; a port in use or an address not of this machine is a config error naming the
 * listener. `reusePort` in a worker thread: its replacement binds the port before it lets go.
 */
export async function listenOn(server: Server, listen: string, name: string, log: Log, reusePort = false): Promise<HostPort> {
  const { host, port } = parseHostPort(listen, `listeners.${name}.listen`, true);
  server.listen({ host, port, exclusive: true, ...(reusePort ? { reusePort } : {}) });
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw configError(`listeners.${name}.listen ${listen}: cannot listen (${code}); choose a free port on a loopback address`);
  }
  // After listen, errors are per connection (EMFILE...): logged, the listener keeps going; a
  // connection flood that causes them makes a few lines a minute, not one each.
  const failed = limitedWarn(atError(log), `listener ${name} errors`, LOG_LIMIT_DEFAULTS);
  server.on('error', (err: NodeJS.ErrnoException) => failed({ reason: err.code ?? err.message }, `listener ${name}: error accepting a connection (${err.code ?? 'unknown'}); it keeps listening`));
  accepting(server);
  const a = server.address() as AddressInfo;
  return { host: a.address, port: a.port };
}

/** Stops listening and destroys every connection, idle or busy. */
export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  const closed = once(server, 'close');
  server.close();
  server.closeAllConnections();
  await closed;
}

/** Whether a peer address is loopback (defence in depth behind the loopback bind). */
export function fromLoopback(address: string | undefined): boolean {
  return address !== undefined && isLoopbackHost(address.replace(/^::ffff:/, ''));
}

/** A live count of the server's open connections, for stats(). */
export function countConnections(server: Server, fault: FaultSink): () => number {
  let open = 0;
  server.on(
    'connection',
    guard(
      (err, s: Socket) => fault(err, { kind: 'connection' }, s),
      (s: Socket) => {
        open++;
        s.once('close', () => open--);
      },
    ),
  );
  return () => open;
}

/** `log` as a LimitedWarn's target that writes at debug level (per-request lines the program causes). */
export function atDebug(log: Log): Log {
  return { warn: log.debug.bind(log) } as unknown as Log;
}

/** `log` as a LimitedWarn's target that writes at error level. */
function atError(log: Log): Log {
  return { warn: log.error.bind(log) } as unknown as Log;
}
