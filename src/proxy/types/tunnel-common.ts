// What both tunnel modes share: counters, TLS contexts built from secrets, the local TCP/stream
// piping, and the rate-limited failure lines.
import { X509Certificate } from 'node:crypto';
import { constants as h2 } from 'node:http2';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { configError } from '../../errors.ts';
import type { Log } from '../../log.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn, type LimitedWarn } from '../log-limit.ts';
import { pipeSockets, type PipeResult } from '../pipe.ts';
import { emptyStats, type ProxyStats as PskStats } from '../stats.ts';
import type { ListenerEnv } from '../listener.ts';

/** The PSK proxy's counters (the piping code fills them), plus the tunnel's own. */
export interface TunnelStats extends PskStats {
  /** HTTP/2 connections opened (client) or accepted (server). */
  sessionsTotal: number;
  sessionsActive: number;
  /** Streams the other side refused (client: non-2xx, reset) or we refused (server: path, method, limits). */
  refused: number;
  /** Bearer tokens refused (server) or not obtainable (client). */
  authFailures: number;
}

export function emptyTunnelStats(): TunnelStats {
  return { ...emptyStats(), sessionsTotal: 0, sessionsActive: 0, refused: 0, authFailures: 0 };
}

/** ListenerHandle.stats(): metric-style names, counters ending in _total. */
export function metricStats(s: TunnelStats): Record<string, number> {
  return {
    connections_active: s.active,
    connections_total: s.total,
    established_total: s.established,
    handshake_failures_total: s.handshakeFailures,
    upstream_failures_total: s.upstreamFailures,
    rejected_total: s.rejected,
    idle_timeouts_total: s.idleTimeouts,
    bytes_from_client_total: s.bytesFromClient,
    bytes_to_client_total: s.bytesToClient,
    sessions_active: s.sessionsActive,
    sessions_total: s.sessionsTotal,
    refused_total: s.refused,
    auth_failures_total: s.authFailures,
  };
}

export interface Warnings {
  /** The HTTP/2 side: connection failures, refused streams, resets. */
  tunnel: LimitedWarn;
  /** Inner TLS handshakes. */
  handshake: LimitedWarn;
  /** The TCP side: the upstream program (server), a token (client). */
  upstream: LimitedWarn;
  auth: LimitedWarn;
}

export function warnings(log: Log): Warnings {
  return {
    tunnel: limitedWarn(log, 'tunnel stream failures', LOG_LIMIT_DEFAULTS),
    handshake: limitedWarn(log, 'tunnel inner TLS handshake failures', LOG_LIMIT_DEFAULTS),
    upstream: limitedWarn(log, 'tunnel upstream failures', LOG_LIMIT_DEFAULTS),
    auth: limitedWarn(log, 'tunnel bearer token failures', LOG_LIMIT_DEFAULTS),
  };
}

/**
 * A TLS context from secrets by name. OpenSSL keeps its own copy of the key: nothing of ours
 * outlives this call (env.secret's buffers are the engine's to wipe).
 */
export function contextFrom(env: ListenerEnv, names: { cert?: string; key?: string; ca?: string }, field: string): SecureContext {
  const opt = (n: string | undefined) => (n === undefined ? undefined : env.secret(n));
  try {
    const cert = opt(names.cert);
    const key = opt(names.key);
    const ca = opt(names.ca);
    // OpenSSL skips a CA bundle it cannot parse, which would silently trust nobody: check it.
    if (ca) new X509Certificate(ca);
    return createSecureContext({
      minVersion: 'TLSv1.2',
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(ca ? { ca } : {}),
    });
  } catch (err) {
    // OpenSSL's reason (bad PEM, key/cert mismatch) names no secret bytes.
    throw configError(`listeners.${env.name}.${field}: the secrets ${Object.values(names).filter(Boolean).join(', ')} do not make a TLS context (${(err as Error).message})`);
  }
}

type Tunnel = Duplex & { setTimeout(ms: number, cb?: () => void): unknown };

/**
 * Pipes a TCP socket and the tunnel (an HTTP/2 stream, or the inner TLS socket over it) both
 * ways, half-close included: a FIN becomes END_STREAM and back (psk/pipe.ts does the work; it
 * needs only Duplex plus setTimeout, which Http2Stream and TLSSocket have). `client` is the side
 * connections come from (client mode: the local TCP socket; server mode: the tunnel).
 */
export function pipeTunnel(client: Socket | Tunnel, upstream: Socket | Tunnel, idleTimeoutMs: number, stats: TunnelStats, done: (r: PipeResult) => void): void {
  stats.established++;
  pipeSockets(client as Socket, upstream as Socket, {
    idleTimeoutMs,
    stats,
    onClose(r) {
      if (r.end === 'idle') stats.idleTimeouts++;
      done(r);
    },
  });
}

export const RST_CANCEL = h2.NGHTTP2_CANCEL;
export const RST_REFUSED = h2.NGHTTP2_REFUSED_STREAM;

export function reason(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err);
}

export function peerOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined } | undefined): string {
  const a = socket?.remoteAddress;
  return a === undefined ? 'unknown' : `${a.includes(':') ? `[${a}]` : a}:${socket!.remotePort}`;
}
