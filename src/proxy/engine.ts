// The part of every listener that does not depend on its type: the connection limit (refused
// at accept, logged once per episode), tracking of every socket so close() can end them, the
// bind with a clear error, and close() that waits until every socket is gone.
import { once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import { configError } from '../errors.ts';
import type { Log } from '../log.ts';
import { formatHostPort, type HostPort } from './address.ts';
import { type ModeContext, type ProxyTimeouts, TIMEOUT_DEFAULTS } from './connection.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn, type LogLimit } from './log-limit.ts';
import { emptyStats, type ProxyStats } from './stats.ts';

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
  const ctx: ModeContext = {
    label, upstream: o.upstream, timeouts: o.timeouts, log, stats, track,
    warnHandshake: limitedWarn(log, `${label} handshake failures`, logLimit),
    warnUpstream: limitedWarn(log, `${label} ${o.upstreamKind} failures`, logLimit),
  };
  let server: Server | undefined;
  let closing: Promise<void> | undefined;

  return {
    ctx,
    stats,
    async serve(s, listen, maxConnections, reusePort = false) {
      server = s;
      s.maxConnections = maxConnections;
      let refusing = false;
      s.on('connection', (raw: Socket) => {
        stats.total++;
        stats.active++;
        track(raw);
        raw.once('close', () => {
          stats.active--;
          if (refusing && stats.active < maxConnections) {
            refusing = false;
            log.info({ maxConnections, rejected: stats.rejected }, `${label} proxy below its connection limit again`);
          }
        });
      });
      s.on('drop', (info?: { remoteAddress?: string; remotePort?: number }) => {
        stats.rejected++;
        // Once per episode, not once per refused connection: a flood must not become a log flood.
        if (!refusing) {
          refusing = true;
          log.warn({ maxConnections, peer: info ? `${info.remoteAddress}:${info.remotePort}` : undefined }, `${label} connection limit reached; refusing new connections`);
        }
      });
      await listenOn(s, listen, `${o.field}.listen`, reusePort);
      // After listen, errors are per accept (EMFILE, ENFILE): the listener keeps going, and an
      // unhandled 'error' would kill the init.
      s.on('error', (err: NodeJS.ErrnoException) => log.error({ reason: err.code ?? err.message }, `${label} listener error`));
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
