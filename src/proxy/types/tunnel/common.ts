// What both tunnel modes share: counters, TLS contexts built from secrets, the local TCP/stream
// piping, and the rate-limited failure lines.
import { X509Certificate } from 'node:crypto';
import { constants as h2 } from 'node:http2';
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { configError } from '../../../lib/errors.ts';
import type { Log } from '../../../lib/log.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn, type LimitedWarn } from '../../../lib/log-limit.ts';
import { pipeSockets, type PipeResult } from '../../pipe.ts';
import { emptyStats, type ProxyStats as PskStats } from '../../stats.ts';
import type { ListenerEnv } from '../../listener.ts';

/** The PSK proxy's counters (the piping code fills them), plus the tunnel's own. */
export interface TunnelStats extends PskStats {
  /** HTTP/2 connections opened (client) or accepted (server). */
  sessionsTotal: number;
  sessionsActive: number;
  /** Streams the other side refused (client: non-2xx, reset) or we refused (server: path, method, limits). */
  refused: number;
  /** Bearer tokens refused (server) or not obtainable (client). */
  authFailures: number;
  /** HTTP/2 connections closed for opening no authenticated tunnel within handshakeTimeout (server). */
  sessionsTimedOut: number;
  /** HTTP/2 connections closed because the peer stopped answering PING. */
  keepaliveFailures: number;
}

export function emptyTunnelStats(): TunnelStats {
  return { ...emptyStats(), sessionsTotal: 0, sessionsActive: 0, refused: 0, authFailures: 0, sessionsTimedOut: 0, keepaliveFailures: 0 };
}

/** ListenerHandle.stats(): metric-style names, counters ending in _total; `faults` from the fault sink. */
export function metricStats(s: TunnelStats, faults: number): Record<string, number> {
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
    sessions_timed_out_total: s.sessionsTimedOut,
    keepalive_failures_total: s.keepaliveFailures,
    connection_faults_total: faults,
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
  /** The HTTP/2 connections: timeouts, PING, GOAWAY, connection errors. */
  session: LimitedWarn;
  /** Informational lines a peer can cause (a GOAWAY with NO_ERROR): limited too, at info. */
  notice: LimitedWarn;
}

export function warnings(log: Log): Warnings {
  return {
    tunnel: limitedWarn(log, 'tunnel stream failures', LOG_LIMIT_DEFAULTS),
    handshake: limitedWarn(log, 'tunnel inner TLS handshake failures', LOG_LIMIT_DEFAULTS),
    upstream: limitedWarn(log, 'tunnel upstream failures', LOG_LIMIT_DEFAULTS),
    auth: limitedWarn(log, 'tunnel bearer token failures', LOG_LIMIT_DEFAULTS),
    session: limitedWarn(log, 'tunnel HTTP/2 connection failures', LOG_LIMIT_DEFAULTS),
    // limitedWarn writes with .warn: hand it a logger whose warn is info.
    notice: limitedWarn({ warn: log.info.bind(log) } as unknown as Log, 'tunnel HTTP/2 connection notices', LOG_LIMIT_DEFAULTS),
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

/** Ends one tunnel (or HTTP/2 connection) through the fault sink; the rest of the handler's arguments are ignored. */
export type OnFault = (err: unknown, ...context: unknown[]) => void;

export const RST_CANCEL = h2.NGHTTP2_CANCEL;
export const RST_REFUSED = h2.NGHTTP2_REFUSED_STREAM;

export function reason(err: unknown): string {
  return printable((err as NodeJS.ErrnoException)?.code ?? (err as Error)?.message ?? String(err));
}

/**
 * A value from the peer (a :path, a method, a certificate's CN, a token's email) as a log
 * field: printable ASCII kept, every other character (controls, C1 controls a terminal takes
 * for escapes, bidi overrides) as \xNN or \u{N}, at most `max` characters.
 */
export function printable(value: unknown, max = 200): string {
  const s = String(value);
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += c >= 0x20 && c < 0x7f && ch !== '\\' ? ch : c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u{${c.toString(16)}}`;
    if (out.length >= max) return `${out.slice(0, max)}…`;
  }
  return out;
}

/**
 * HTTP/2 limits for both ends, on top of the SETTINGS each side sends: what a misbehaving peer
 * can make one session hold or do before Node ends it (docs/design.md, tunnel bounds).
 */
export const H2_LIMITS = {
  // Header blocks and their entries: a tunnel request is a handful of headers and a token.
  maxHeaderListPairs: 64,
  // Entries per SETTINGS frame, and SETTINGS we may have sent unacknowledged.
  maxSettings: 16,
  maxOutstandingSettings: 4,
  // Our own PINGs in flight (keepalive sends one at a time).
  maxOutstandingPings: 2,
  // Invalid frames, and streams refused for going over the limit, before the session ends.
  maxSessionInvalidFrames: 100,
  maxSessionRejectedStreams: 100,
  // RST_STREAM a peer may send (rapid reset, CVE-2023-44487): a burst, then a rate per second.
  streamResetBurst: 200,
  streamResetRate: 50,
  // Node's default (10 MB) would refuse new streams while many tunnels have data in flight;
  // the stream windows bound the data, this the rest (headers, queued frames).
  maxSessionMemory: 64,
} as const;

/** The SETTINGS value for header lists (32 KiB: an ID token and a front door's headers fit). */
export const MAX_HEADER_LIST_SIZE = 32_768;

/**
 * HTTP/2 PING every `intervalMs` on `session`; a PING still unanswered at the next one means
 * the peer is gone (a VM frozen, a NAT entry dropped: no FIN, TCP keepalive only after
 * minutes) and `dead()` is called once. 0 = off. The timer never keeps the process alive.
 */
export function keepalive(session: { ping(cb: (err: Error | null) => void): boolean; once(e: 'close', f: () => void): unknown; destroyed: boolean }, intervalMs: number, dead: () => void): void {
  if (intervalMs <= 0) return;
  let outstanding = false;
  const timer = setInterval(() => {
    if (session.destroyed) return void clearInterval(timer);
    if (outstanding) {
      clearInterval(timer);
      return dead();
    }
    outstanding = true;
    try {
      session.ping((err) => {
        if (!err) outstanding = false;
      });
    } catch {
      // the session is closing: its 'close' clears the timer
    }
  }, intervalMs).unref();
  session.once('close', () => clearInterval(timer));
}

export function peerOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined } | undefined): string {
  const a = socket?.remoteAddress;
  return a === undefined ? 'unknown' : `${a.includes(':') ? `[${a}]` : a}:${socket!.remotePort}`;
}
