// The part of every listener that does not depend on its type: the connection limit (refused
// at accept, logged once per episode, exact over the listener's worker threads), the failure
// boundary of its connections (ctx.fault, guarded 'connection' handlers), probes told apart
// from failures, tracking of every socket so close() can end them, the
// bind with a clear error, and close() that waits until every socket is gone.
import { once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import { configError } from '../lib/errors.ts';
import type { Log } from '../lib/log.ts';
import { formatHostPort, type HostPort } from '../lib/address.ts';
import { createFaultSink, type FaultSink, guard } from './boundary.ts';
import { type ModeContext, peerOf, type ProxyTimeouts, TIMEOUT_DEFAULTS } from './connection.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn, type LogLimit } from '../lib/log-limit.ts';
import { emptyStats, type ProxyStats } from './stats.ts';
import { accepting, listenerLimits } from '../lib/thread.ts';

export const MAX_CONNECTIONS_DEFAULT = 1000;

export interface EngineOptions {
  /** Prefixes log messages: `psk`, `tls`. */
  label: string;
  /** The config path of this listener (`psk`, `listeners.mesh-in`), for error messages. */
  field: string;
  upstream: HostPort;
  timeouts: Required<ProxyTimeouts>;
  log: Log;
  logLimit?: Partial<LogLimit> | undefined;
  /** Says what the upstream is in failure summaries: `upstream` (a backend) or `remote peer`. */
  upstreamKind: 'upstream' | 'remote peer';
}

export interface Engine {
  /** What the type's connection handlers use: stats, timeouts, rate-limited warnings, track(). */
  ctx: ModeContext;
  stats: ProxyStats;
  /** Applies the limit, binds `listen`, and returns the address bound. */
  serve(server: Server, listen: HostPort, maxConnections: number, reusePort?: boolean): Promise<HostPort>;
  /** Stops listening, destroys every socket, resolves once all are closed. Idempotent. */
  close(): Promise<void>;
}

export function createEngine(o: EngineOptions): Engine {
  const { log, label } = o;
  const stats = emptyStats();
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const logLimit = { ...LOG_LIMIT_DEFAULTS, ...o.logLimit };
  const fault = createFaultSink(log, label, logLimit);
  Object.defineProperty(stats, 'faults', { get: () => fault.count, enumerable: true });
  const probed = new WeakSet<Socket>();
  const ctx: ModeContext = {
    label, upstream: o.upstream, timeouts: o.timeouts, log, stats, track, fault,
    warnHandshake: limitedWarn(log, `${label} handshake failures`, logLimit),
    warnUpstream: limitedWarn(log, `${label} ${o.upstreamKind} failures`, logLimit),
    probe(socket, err) {
      // A TLSSocket reads through the TCP socket it wraps (Node keeps it as _parent).
      const raw = (socket as Socket & { _parent?: Socket })._parent ?? socket;
      if (probed.has(raw)) return true;
      if (raw.bytesRead > 0 || (err as NodeJS.ErrnoException | undefined)?.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return false;
      probed.add(raw);
      stats.probes++;
      return true;
    },
  };
  let server: Server | undefined;
  let closing: Promise<void> | undefined;

  return {
    ctx,
    stats,
    async serve(s, listen, maxConnections, reusePort = false) {
      server = s;
      limitConnections(s, maxConnections, {
        log, label, fault,
        accepted(raw) {
          stats.total++;
          stats.active++;
          track(raw);
          raw.once('close', () => stats.active--);
        },
        refused: () => stats.rejected++,
      });
      await listenOn(s, listen, `${o.field}.listen`, reusePort);
      // After listen, errors are per accept (EMFILE, ENFILE): the listener keeps going, and an
      // unhandled 'error' would kill the init.
      s.on('error', (err: NodeJS.ErrnoException) => log.error({ reason: err.code ?? err.message }, `${label} listener error`));
      accepting(s);
      const bound = s.address() as AddressInfo;
      return { host: bound.address, port: bound.port };
    },
    close() {
      closing ??= (async () => {
        // The set holds only sockets that have not emitted 'close' yet (track() removes them
        // on 'close'); waiting for each one settles stats and file descriptors before returning.
        const closed = [...(server?.listening ? [once(server, 'close')] : []), ...[...sockets].map((s) => once(s, 'close'))];
        server?.close();
        for (const s of sockets) s.destroy();
        await Promise.all(closed);
      })();
      return closing;
    },
  };
}

export interface ConnectionLimitHooks {
  log: Log;
  label: string;
  /** Where a throw of a 'connection' handler goes (it ends that connection only). */
  fault: FaultSink;
  /** A connection took a slot (it gives it back on 'close'). */
  accepted?(raw: Socket): void;
  refused?(raw: Socket): void;
}

/**
 * The listener's connection limit, exact over all its worker threads (src/lib/thread.ts), and the
 * failure boundary of its 'connection' handlers. Call it after the server's own 'connection'
 * listeners are registered (createServer's callback, tls.Server's): they then run only for an
 * admitted connection, in order, each inside guard(). Node's server.maxConnections is per
 * server, so per thread: it is not used.
 */
export function limitConnections(server: Server, maxConnections: number, hooks: ConnectionLimitHooks): void {
  const { log, label } = hooks;
  const limits = listenerLimits();
  const handlers = server.listeners('connection') as ((raw: Socket) => unknown)[];
  server.removeAllListeners('connection');
  server.on('connection', (raw: Socket) => {
    if (!limits.enter(maxConnections)) {
      hooks.refused?.(raw);
      raw.on('error', () => {}); // a reset from a peer we drop is of no interest
      raw.destroy();
      // Once per episode for the whole listener, not per refused connection or per thread.
      if (limits.startRefusing()) log.warn({ maxConnections, peer: peerOf(raw) }, `${label} connection limit reached; refusing new connections`);
      return;
    }
    raw.once('close', () => {
      if (limits.leave() < maxConnections && limits.stopRefusing()) {
        log.info({ maxConnections }, `${label} below its connection limit again; accepting new connections`);
      }
    });
    hooks.accepted?.(raw);
    const onFault = (err: unknown) => hooks.fault(err, { peer: peerOf(raw) }, raw);
    for (const h of handlers) guard<[Socket]>(onFault, (r) => h.call(server, r))(raw);
  });
}

/** Fills in defaults; `field` prefixes the error (`psk.timeouts`). */
export function checkTimeouts(t: ProxyTimeouts = {}, field: string): Required<ProxyTimeouts> {
  const out = { ...TIMEOUT_DEFAULTS, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) };
  for (const [k, v] of Object.entries(out)) {
    const min = k === 'idleMs' ? 0 : 1;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw configError(`${field}.${k} must be a number of ms ≥ ${min}, got ${v}`);
  }
  return out;
}

export function checkMaxConnections(n: number | undefined, field: string): number {
  const max = n ?? MAX_CONNECTIONS_DEFAULT;
  if (!Number.isInteger(max) || max < 1) throw configError(`${field}.maxConnections must be a whole number ≥ 1, got ${max}`);
  return max;
}

async function listenOn(server: Server, { host, port }: HostPort, field: string, reusePort: boolean): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(configError(`${field} ${formatHostPort({ host, port })}: cannot listen (${err.code ?? err.message}); choose a free port on an address of this machine`, {
        code: err.code,
      }));
    };
    server.once('error', onError);
    server.listen({ host, port, ...(reusePort ? { reusePort } : {}) }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
