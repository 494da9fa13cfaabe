// What every mode of every type shares: the per-listener context and the start of piping.
import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Log } from '../lib/log.ts';
import type { FaultSink } from './boundary.ts';
import { formatHostPort, type HostPort } from '../lib/address.ts';
import type { LimitedWarn } from '../lib/log-limit.ts';
import { type PipeOptions, pipeSockets } from './pipe.ts';
import { spliceSockets } from './splice.ts';
import type { ProxyStats } from './stats.ts';

export interface ProxyTimeouts {
  /** TLS handshake, from TCP accept (server) or TCP connect start (client). Default 10 s. */
  handshakeMs?: number;
  /** Plain TCP connect to the upstream (server mode). Default 5 s. */
  connectMs?: number;
  /** No traffic either way for this long closes a connection; 0 = never. Default 12 h, as stunnel's TIMEOUTidle. */
  idleMs?: number;
}

export const TIMEOUT_DEFAULTS: Required<ProxyTimeouts> = { handshakeMs: 10_000, connectMs: 5_000, idleMs: 12 * 3_600_000 };

// Finds peers that vanished without a FIN (a VM gone, a NAT entry dropped) long before idleMs.
export const KEEPALIVE_MS = 60_000;

export interface ModeContext {
  /** Prefixes log messages: `psk`, `tls`. */
  label: string;
  upstream: HostPort;
  timeouts: Required<ProxyTimeouts>;
  log: Log;
  /** Rate-limited warnings for per-connection failures, by kind. */
  warnHandshake: LimitedWarn;
  warnUpstream: LimitedWarn;
  stats: ProxyStats;
  /** Registers an upstream socket, so that close() can destroy it. */
  track(socket: Socket): void;
  /**
   * The listener's failure boundary: ends the victims (one connection's sockets, request,
   * stream), counts `connection_faults_total`, logs rate-limited. Handlers the engine calls
   * ('connection' listeners) are already guarded; types guard the others with guard().
   */
  fault: FaultSink;
  /**
   * True (and counted once in `probes_total`) when `socket` (raw or TLS) closed before its peer
   * sent a byte and not by our handshake deadline: a health check, not a handshake failure.
   */
  probe(socket: Socket, err?: Error): boolean;
}

export function peerOf(socket: Socket): string {
  const a = socket.remoteAddress;
  return a === undefined ? 'unknown' : `${a.includes(':') ? `[${a}]` : a}:${socket.remotePort}`;
}

export type Fields = { peer: string } & Record<string, unknown>;

/**
 * Server side: a client is in (its TLS session up, or a plaintext client let in): connect to
 * the upstream, then hand both sockets to `serve` (default: pipe them). A failed upstream
 * closes the client cleanly and is logged, rate-limited.
 */
export function forwardToUpstream(
  ctx: ModeContext, client: Socket, secure: TLSSocket | undefined, fields: Fields, t0: number,
  serve: (upstream: Socket) => void = (upstream) => startPiping(ctx, client, upstream, secure, fields, t0),
): void {
  dialUpstream(client, ctx.upstream, ctx.timeouts.connectMs, ctx.track, serve, (err) => {
    ctx.stats.upstreamFailures++;
    ctx.warnUpstream({ ...fields, upstream: formatHostPort(ctx.upstream), reason: reason(err) }, `${ctx.label} upstream unreachable; closing the client connection`);
    // close_notify, then close: the client learns at once, and cleanly.
    client.end(() => client.destroy());
  });
}

/**
 * Connects to `target` for a client that waits: gives up after `timeoutMs` or when the client
 * goes away (holdUpstream). On success keeps the connection alive and calls `ready`; on failure
 * calls `failed` once, and the caller counts, logs and closes its side as its protocol says.
 */
export function dialUpstream(
  client: Socket, target: HostPort, timeoutMs: number, track: (s: Socket) => void,
  ready: (upstream: Socket) => void, failed: (err: Error) => void,
): void {
  const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
  track(upstream);
  const hold = holdUpstream(client, upstream, timeoutMs, () =>
    Object.assign(new Error(`no connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
  );
  upstream.once('connect', () => {
    if (!hold.settle()) return;
    upstream.setKeepAlive(true, KEEPALIVE_MS);
    ready(upstream);
  });
  upstream.on('error', (err) => {
    if (hold.settled) return;
    hold.cancel();
    failed(err);
  });
}

/** Both sides are up: count it, log it, pipe until both close. `secure` is the TLS side, if any. */
export function startPiping(ctx: ModeContext, client: Socket, upstream: Socket, secure: TLSSocket | undefined, fields: Fields, t0: number): void {
  opened(ctx, secure, fields, t0);
  const options: PipeOptions = {
    idleTimeoutMs: ctx.timeouts.idleMs,
    stats: ctx.stats,
    onClose(r) {
      if (r.end === 'idle') ctx.stats.idleTimeouts++;
      if (!ctx.log.isLevelEnabled('debug')) return;
      ctx.log.debug(
        {
          ...fields, end: r.end, bytesFromClient: r.bytesFromClient, bytesToClient: r.bytesToClient,
          ms: round(performance.now() - t0), ...(r.error ? { reason: reason(r.error) } : {}),
        },
        `${ctx.label} connection closed`,
      );
    },
  };
  // Plaintext both ways (permissive mode's plaintext clients): in the kernel where it can be.
  if (secure === undefined && spliceSockets(client, upstream, options, (err) => ctx.fault(err, fields, client, upstream), ctx)) return;
  pipeSockets(client, upstream, options);
}

/** Counts an established connection and logs it at debug. */
export function opened(ctx: ModeContext, secure: TLSSocket | undefined, fields: Fields, t0: number): void {
  ctx.stats.established++;
  // Guarded: building the record (two calls into OpenSSL) costs even when debug is off.
  if (ctx.log.isLevelEnabled('debug')) {
    const tls = secure ? { protocol: secure.getProtocol(), cipher: secure.getCipher()?.name } : { protocol: 'plaintext' };
    ctx.log.debug({ ...fields, ...tls, setupMs: round(performance.now() - t0) }, `${ctx.label} connection open`);
  }
}

export function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

export function reason(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

/** The hold of an accepted client on its upstream socket until piping starts. */
export interface UpstreamHold {
  /** The upstream is up: stops the timer; false (upstream destroyed) if the client left meanwhile. */
  settle(): boolean;
  /** True once settled: from then on errors belong to pipe.ts. */
  readonly settled: boolean;
  /** Stops the timer (the upstream failed on its own). */
  cancel(): void;
}

/**
 * Until piping starts, the upstream is destroyed if the client goes away or if `ms` pass
 * (with `timeoutError`, which the upstream's error handler then reports).
 */
export function holdUpstream(client: Socket, upstream: Socket, ms: number, timeoutError: () => Error): UpstreamHold {
  let settled = false;
  const timer = setTimeout(() => upstream.destroy(timeoutError()), ms);
  const giveUp = () => {
    if (settled) return;
    clearTimeout(timer);
    upstream.destroy();
  };
  client.once('close', giveUp);
  client.on('error', giveUp); // after piping, pipe.ts handles errors
  return {
    settle() {
      clearTimeout(timer);
      if (client.destroyed) {
        upstream.destroy();
        return false;
      }
      settled = true;
      return true;
    },
    get settled() {
      return settled;
    },
    cancel: () => clearTimeout(timer),
  };
}
