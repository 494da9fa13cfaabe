// Server mode: an HTTP/2 listener (h2c behind Cloud Run, or TLS) whose POST-on-`path` and
// CONNECT streams are each piped to `connect`, after an optional bearer check and optional
// mutual TLS inside the stream. The destination is fixed: whatever :authority a CONNECT names,
// it goes to `connect` (never an open relay).
import {
  constants as h2, createSecureServer, createServer as createH2cServer, type Http2Server, type Http2SecureServer,
  type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { formatHostPort, parseHostPort } from '../address.ts';
import { dialUpstream, peerOf, round } from '../connection.ts';
import type { ListenerEnv } from '../listener.ts';
import { bearerCheck } from './tunnel-bearer.ts';
import { contextFrom, pipeTunnel, reason, type TunnelStats, warnings } from './tunnel-common.ts';
import type { TunnelServerConfig } from './tunnel-schema.ts';

export interface ServerMode {
  server: Http2Server | Http2SecureServer;
  reload(): void;
  close(): Promise<void>;
}

export function createTunnelServer(config: TunnelServerConfig, env: ListenerEnv, stats: TunnelStats, track: (s: Socket) => void): ServerMode {
  const { log } = env;
  const warn = warnings(log);
  const upstream = parseHostPort(config.connect, `listeners.${env.name}.connect`);
  const upstreamText = formatHostPort(upstream);
  const methods = new Set<string>(config.methods);
  const checkBearer = config.bearer ? bearerCheck(config.bearer) : undefined;
  const innerContext = () => (config.inner ? contextFrom(env, config.inner.tls, 'inner.tls') : undefined);
  let inner = innerContext();
  const outerOptions = () => (config.tls ? { cert: env.secret(config.tls.cert), key: env.secret(config.tls.key) } : undefined);

  const options = {
    settings: { maxConcurrentStreams: config.maxStreams, initialWindowSize: config.streamWindow, enablePush: false },
    // Streams over the limit are refused by the peer's own accounting; this bounds what a
    // misbehaving peer can make us hold (headers, queued frames) per session.
    maxSessionMemory: 64,
    peerMaxConcurrentStreams: config.maxStreams,
  };
  const outer = outerOptions();
  const server = outer
    ? createSecureServer({ ...options, ...outer, minVersion: 'TLSv1.2', allowHTTP1: false })
    : createH2cServer(options);
  server.maxConnections = config.maxConnections;

  const sessions = new Set<Http2Session>();
  server.on('session', (session: Http2Session) => {
    stats.sessionsTotal++;
    stats.sessionsActive++;
    sessions.add(session);
    session.setLocalWindowSize(Math.min(2 ** 31 - 1, config.streamWindow * 8));
    const peer = peerOf(session.socket as Socket);
    session.on('error', (err) => warn.tunnel({ peer, reason: reason(err) }, 'tunnel HTTP/2 connection failed'));
    session.once('close', () => {
      sessions.delete(session);
      stats.sessionsActive--;
    });
  });
  // No HTTP/2 preface (a port scanner, HTTP/1.1 to an h2c port): Node answers with GOAWAY.
  server.on('sessionError', () => {});
  server.on('timeout', () => {});

  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stats.total++;
    stats.active++;
    stream.once('close', () => stats.active--);
    stream.on('error', () => {}); // every path below reports its own failure; pipe.ts after that
    const t0 = performance.now();
    const peer = stream.session ? peerOf(stream.session.socket as Socket) : 'unknown';
    const method = headers[h2.HTTP2_HEADER_METHOD] as string;
    const refuse = (status: number, why: string, extra: Record<string, string> = {}) => {
      stats.refused++;
      if (stream.destroyed || stream.headersSent) return void stream.close(h2.NGHTTP2_REFUSED_STREAM);
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: status, 'content-type': 'text/plain; charset=utf-8', ...extra });
      stream.end(`${why}\n`);
    };
    if (!methods.has(method) || (method === 'POST' && pathOf(headers) !== config.path)) {
      warn.tunnel({ peer, method, path: method === 'POST' ? pathOf(headers) : undefined }, 'tunnel: refused a request that is not a tunnel here');
      const status = methods.has(method) ? 404 : 405;
      return refuse(status, status === 404 ? 'not a tunnel path' : 'method not allowed', status === 405 ? { allow: [...methods].join(', ') } : {});
    }
    const admitted = checkBearer
      ? checkBearer(headers.authorization).then((r) => {
          if (r.ok) return true;
          stats.authFailures++;
          warn.auth({ peer, reason: r.reason }, 'tunnel: bearer token refused');
          refuse(401, 'bearer token refused', { 'www-authenticate': 'Bearer error="invalid_token"' });
          return false;
        })
      : Promise.resolve(true);
    void admitted.then((ok) => {
      if (!ok || stream.destroyed) return;
      if (inner) return handshake(stream, inner, peer, t0);
      connectUpstream(stream, peer, t0, (tcp) => {
        stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 });
        start(tcp, stream, peer, t0);
      });
    });
  });

  /** Connects to the program; reports failure on the stream (502 before a response, reset after). */
  function connectUpstream(stream: ServerHttp2Stream, peer: string, t0: number, ready: (tcp: Socket) => void, tunnel?: TLSSocket): void {
    dialUpstream((tunnel ?? stream) as unknown as Socket, upstream, config.connectTimeout, track, ready, (err) => {
      stats.upstreamFailures++;
      warn.upstream({ peer, upstream: upstreamText, reason: reason(err), ms: round(performance.now() - t0) }, 'tunnel upstream unreachable; closing the tunnel');
      if (tunnel) tunnel.end(() => tunnel.destroy());
      else if (!stream.destroyed && !stream.headersSent) {
        stream.respond({ [h2.HTTP2_HEADER_STATUS]: 502, 'content-type': 'text/plain; charset=utf-8' });
        stream.end('upstream unreachable\n');
      } else stream.close(h2.NGHTTP2_CONNECT_ERROR);
    });
  }

  function handshake(stream: ServerHttp2Stream, ctx: SecureContext, peer: string, t0: number): void {
    // The client's inner TLS starts once it has the 200: answer first, then authenticate, and
    // only then open a connection to the program.
    stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 });
    const tls = new TLSSocket(stream as unknown as Socket, { isServer: true, secureContext: ctx, requestCert: true, rejectUnauthorized: true });
    const giveUp = (why: string) => {
      stats.handshakeFailures++;
      warn.handshake({ peer, reason: why }, 'tunnel inner TLS handshake failed; closing the tunnel');
      tls.destroy();
      stream.close(h2.NGHTTP2_CANCEL);
    };
    const timer = setTimeout(() => giveUp('ETIMEDOUT'), config.handshakeTimeout);
    const onError = (err: Error) => {
      clearTimeout(timer);
      giveUp(reason(err));
    };
    tls.once('error', onError);
    stream.once('close', () => clearTimeout(timer));
    tls.once('secure', () => {
      clearTimeout(timer);
      // A bare TLSSocket, unlike one made by tls.Server, does not act on OpenSSL's verdict
      // (tls.authorized stays false, even for a good certificate): ask for it here.
      const verdict = verifyError(tls);
      if (verdict !== null) return giveUp(verdict);
      tls.off('error', onError);
      tls.on('error', () => {}); // until piping: connectUpstream's hold sees the close
      const cert = tls.getPeerCertificate();
      connectUpstream(stream, peer, t0, (tcp) => start(tcp, tls, peer, t0, [cert?.subject?.CN].flat().join(',')), tls);
    });
  }

  function start(tcp: Socket, tunnel: ServerHttp2Stream | TLSSocket, peer: string, t0: number, client?: string): void {
    const fields = { peer, client, setupMs: round(performance.now() - t0) };
    log.debug(fields, 'tunnel open');
    pipeTunnel(tunnel, tcp, config.idleTimeout, stats, (r) => {
      log.debug({ ...fields, end: r.end, bytesFromClient: r.bytesFromClient, bytesToClient: r.bytesToClient, ...(r.error ? { reason: reason(r.error) } : {}) }, 'tunnel closed');
    });
  }

  return {
    server,
    reload() {
      const nextInner = innerContext();
      const nextOuter = outerOptions();
      if (nextOuter) (server as Http2SecureServer).setSecureContext({ ...nextOuter, minVersion: 'TLSv1.2' });
      inner = nextInner;
    },
    async close() {
      for (const s of sessions) s.destroy();
    },
  };
}

/** OpenSSL's verification result of the peer's certificate: null when it chains to the CA. */
function verifyError(tls: TLSSocket): string | null {
  if (!tls.getPeerX509Certificate()) return 'no client certificate';
  const err = (tls as unknown as { _handle?: { verifyError(): NodeJS.ErrnoException | null } })._handle?.verifyError();
  return err === undefined ? 'cannot read the verification result' : err === null ? null : (err.code ?? err.message);
}

function pathOf(headers: IncomingHttpHeaders): string {
  // The query string is not part of the match: a front door may add one.
  return String(headers[h2.HTTP2_HEADER_PATH] ?? '').split('?')[0]!;
}
