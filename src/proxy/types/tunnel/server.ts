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
import { formatHostPort, parseHostPort } from '../../../lib/address.ts';
import { type Destroyable, type FaultSink, guard } from '../../boundary.ts';
import { dialUpstream, peerOf, round } from '../../connection.ts';
import type { ListenerEnv } from '../../listener.ts';
import type { PipeResult } from '../../pipe.ts';
import { bearerCheck } from './bearer.ts';
import { contextFrom, H2_LIMITS, keepalive, MAX_HEADER_LIST_SIZE, pipeTunnel, printable, type OnFault, reason, type TunnelStats, warnings } from './common.ts';
import type { TunnelServerConfig } from '../../../config/listeners/tunnel.ts';

export interface ServerMode {
  server: Http2Server | Http2SecureServer;
  reload(): void;
  close(): Promise<void>;
}

/** One HTTP/2 connection's standing: how many authenticated tunnels it carries, and its deadline. */
interface Live {
  tunnels: number;
  timer: NodeJS.Timeout | undefined;
  /** Ends the connection through the fault sink (its own timers' boundary). */
  onFault: OnFault;
  /** Ends the connection, TCP socket included. */
  end(): void;
}

export function createTunnelServer(config: TunnelServerConfig, env: ListenerEnv, stats: TunnelStats, track: (s: Socket) => void, fault: FaultSink): ServerMode {
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
    ...H2_LIMITS,
    settings: { maxConcurrentStreams: config.maxStreams, initialWindowSize: config.streamWindow, enablePush: false, maxHeaderListSize: MAX_HEADER_LIST_SIZE },
    peerMaxConcurrentStreams: config.maxStreams,
    // TLS whose ALPN is not h2: Node holds the socket this long before closing it.
    unknownProtocolTimeout: config.handshakeTimeout,
  };
  const outer = outerOptions();
  const server = outer
    ? createSecureServer({ ...options, ...outer, minVersion: 'TLSv1.2', allowHTTP1: false, handshakeTimeout: config.handshakeTimeout })
    : createH2cServer(options);
  server.maxConnections = config.maxConnections;

  if (outer) {
    // The outer TLS handshake failed or timed out (handshakeTimeout): count it, log it limited.
    server.on('tlsClientError', guard((err, _e: Error, socket: Socket) => fault(err, {}, socket), (err: Error, socket: Socket) => {
      stats.handshakeFailures++;
      warn.handshake({ peer: peerOf(socket), reason: reason(err) }, 'tunnel TLS handshake (HTTP/2 over TLS) failed or timed out; closing the connection');
      socket.destroy();
    }));
  }

  // TCP sockets by peer, for reap() below (the session's own socket is a proxy that cannot be
  // destroyed).
  const sockets = new Map<string, Socket>();
  server.on('connection', guard((err, socket: Socket) => fault(err, {}, socket), (socket: Socket) => {
    const key = peerOf(socket);
    sockets.set(key, socket);
    socket.once('close', () => {
      if (sockets.get(key) === socket) sockets.delete(key);
    });
  }));

  const sessions = new Map<Http2Session, Live>();
  server.on('session', guard((err, session: Http2Session) => fault(err, {}, session), (session: Http2Session) => {
    stats.sessionsTotal++;
    stats.sessionsActive++;
    const peer = peerOf(session.socket as Socket);
    const onFault: OnFault = (err) => fault(err, { peer }, session);
    // Node ends a destroyed session's socket only once what it wrote has been flushed (and
    // emits the session's 'close' only then): a peer that reads nothing (frozen, zero window)
    // would keep it, and its maxConnections slot, for good. Ended handshakeTimeout later.
    const reap = () => {
      setTimeout(guard(onFault, () => {
        // Looked up now: Node emits 'session' (h2c) before our 'connection' handler has run.
        const socket = sockets.get(peer);
        if (!socket || socket.destroyed) return;
        warn.session({ peer }, 'tunnel: a TCP connection outlived its HTTP/2 connection by handshakeTimeout (the client reads nothing); ended it');
        socket.destroy();
      }), config.handshakeTimeout).unref();
    };
    const end = () => {
      session.destroy();
      reap();
    };
    const live: Live = { tunnels: 0, timer: undefined, onFault, end };
    sessions.set(session, live);
    session.once('close', guard(onFault, () => {
      clearTimeout(live.timer);
      sessions.delete(session);
      stats.sessionsActive--;
    }));
    session.on('error', guard(onFault, (err: Error) => {
      warn.session({ peer, reason: reason(err) }, 'tunnel HTTP/2 connection failed');
      reap();
    }));
    session.on('frameError', guard(onFault, (type: number, code: number) => warn.session({ peer, frameType: type, code }, 'tunnel: an HTTP/2 frame to the client could not be sent')));
    // Until it carries an authenticated tunnel, a connection holds a slot of maxConnections for
    // handshakeTimeout at most: headers, bearer check and inner TLS of its first tunnel included.
    live.timer = setTimeout(guard(onFault, () => {
      stats.sessionsTimedOut++;
      warn.session({ peer, handshakeTimeout: config.handshakeTimeout }, `tunnel: an HTTP/2 connection opened no authenticated tunnel within handshakeTimeout (${config.handshakeTimeout} ms); closed it`);
      end();
    }), config.handshakeTimeout).unref();
    keepalive(session, config.keepalive, guard(onFault, () => {
      stats.keepaliveFailures++;
      warn.session({ peer, keepalive: config.keepalive }, `tunnel: the client did not answer PING within keepalive (${config.keepalive} ms); closing its HTTP/2 connection and its tunnels`);
      end();
    }));
    session.setLocalWindowSize(Math.min(2 ** 31 - 1, config.streamWindow * 8));
  }));
  // No HTTP/2 preface (a port scanner, HTTP/1.1 to an h2c port): Node answers with GOAWAY.
  server.on('sessionError', () => {});
  server.on('timeout', () => {});

  /**
   * A tunnel on `session` passed every check: the connection is in use, no deadline. False (the
   * stream reset REFUSED_STREAM, logged) when maxTunnels are open: what bounds the program
   * connections a listener holds, connecting or piped.
   */
  let tunnels = 0;
  function authenticated(session: Http2Session, stream: ServerHttp2Stream, peer: string, onFault: OnFault): boolean {
    const live = sessions.get(session);
    if (!live || stream.destroyed) return false;
    if (tunnels >= config.maxTunnels) {
      stats.rejected++;
      warn.tunnel({ peer, maxTunnels: config.maxTunnels }, `tunnel: maxTunnels (${config.maxTunnels}) open; refused a new tunnel (raise maxTunnels, or scale out)`);
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
      return false;
    }
    tunnels++;
    live.tunnels++;
    clearTimeout(live.timer);
    stream.once('close', guard(onFault, () => {
      tunnels--;
      if (--live.tunnels > 0 || config.idleTimeout === 0 || session.destroyed) return;
      // Its last tunnel ended: idle for idleTimeout, then GOAWAY (streams that raced it finish).
      live.timer = setTimeout(guard(live.onFault, () => {
        log.debug({ peer, idleTimeout: config.idleTimeout }, 'tunnel HTTP/2 connection idle; closing it');
        session.close();
        // A peer that never closes its side: gone after handshakeTimeout more.
        live.timer = setTimeout(guard(live.onFault, live.end), config.handshakeTimeout).unref();
      }), config.idleTimeout).unref();
    }));
    return true;
  }

  server.on('stream', guard((err, stream: ServerHttp2Stream) => fault(err, {}, stream), (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stats.total++;
    stats.active++;
    stream.once('close', () => stats.active--);
    stream.on('error', () => {}); // every path below reports its own failure; pipe.ts after that
    const t0 = performance.now();
    const session = stream.session;
    const peer = session ? peerOf(session.socket as Socket) : 'unknown';
    // Everything this tunnel holds, for the fault boundary: ended together.
    const parts: Destroyable[] = [stream];
    const onFault: OnFault = (err) => fault(err, { peer }, ...parts);
    const method = String(headers[h2.HTTP2_HEADER_METHOD]);
    const refuse = (status: number, why: string, extra: Record<string, string> = {}) => {
      stats.refused++;
      if (stream.destroyed || stream.headersSent) return void stream.close(h2.NGHTTP2_REFUSED_STREAM);
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: status, 'content-type': 'text/plain; charset=utf-8', ...extra });
      stream.end(`${why}\n`);
    };
    if (!methods.has(method) || (method === 'POST' && pathOf(headers) !== config.path)) {
      warn.tunnel({ peer, method: printable(method, 16), path: method === 'POST' ? printable(pathOf(headers)) : undefined }, 'tunnel: refused a request that is not a tunnel here');
      const status = methods.has(method) ? 404 : 405;
      return refuse(status, status === 404 ? 'not a tunnel path' : 'method not allowed', status === 405 ? { allow: [...methods].join(', ') } : {});
    }
    const admit = async () => {
      // Frames read with this HEADERS are processed first: a stream reset at once (rapid reset,
      // CVE-2023-44487) is closed by then and never costs the program a connection.
      await new Promise((resolve) => setImmediate(resolve));
      if (stream.closed) return;
      if (checkBearer) {
        const r = await checkBearer(headers.authorization);
        if (!r.ok) {
          stats.authFailures++;
          warn.auth({ peer, reason: printable(r.reason) }, 'tunnel: bearer token refused');
          return refuse(401, 'bearer token refused', { 'www-authenticate': 'Bearer error="invalid_token"' });
        }
      }
      if (stream.closed || !session) return;
      if (inner) return handshake(stream, session, inner, peer, t0, parts, onFault);
      if (!authenticated(session, stream, peer, onFault)) return;
      connectUpstream(stream, peer, t0, parts, onFault, (tcp) => {
        stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 });
        start(tcp, stream, peer, t0, onFault);
      });
    };
    guard(onFault, admit)();
  }));

  /** Connects to the program; reports failure on the stream (502 before a response, reset after). */
  function connectUpstream(
    stream: ServerHttp2Stream, peer: string, t0: number, parts: Destroyable[], onFault: OnFault, ready: (tcp: Socket) => void, tunnel?: TLSSocket,
  ): void {
    const track1 = (tcp: Socket) => {
      track(tcp);
      parts.push(tcp);
    };
    dialUpstream((tunnel ?? stream) as unknown as Socket, upstream, config.connectTimeout, track1, guard(onFault, ready), guard(onFault, (err: Error) => {
      stats.upstreamFailures++;
      warn.upstream({ peer, upstream: upstreamText, reason: reason(err), ms: round(performance.now() - t0) }, 'tunnel upstream unreachable; closing the tunnel');
      if (tunnel) tunnel.end(() => tunnel.destroy());
      else if (!stream.destroyed && !stream.headersSent) {
        stream.respond({ [h2.HTTP2_HEADER_STATUS]: 502, 'content-type': 'text/plain; charset=utf-8' });
        stream.end('upstream unreachable\n');
      } else stream.close(h2.NGHTTP2_CONNECT_ERROR);
    }));
  }

  function handshake(stream: ServerHttp2Stream, session: Http2Session, ctx: SecureContext, peer: string, t0: number, parts: Destroyable[], onFault: OnFault): void {
    // The client's inner TLS starts once it has the 200: answer first, then authenticate, and
    // only then open a connection to the program.
    stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200 });
    const tls = new TLSSocket(stream as unknown as Socket, { isServer: true, secureContext: ctx, requestCert: true, rejectUnauthorized: true });
    parts.push(tls);
    // Node cannot send a TLS alert for a certificate it refuses after the handshake (its verify
    // callback accepts everything; the verdict is read afterwards): the reset code is the signal
    // a tee-init client reads and logs (RFC 9113 §7: INADEQUATE_SECURITY).
    const giveUp = (why: string, code: number) => {
      stats.handshakeFailures++;
      warn.handshake({ peer, reason: printable(why) }, 'tunnel inner TLS handshake failed; closing the tunnel');
      if (!stream.destroyed) stream.close(code);
      tls.destroy();
    };
    const timer = setTimeout(guard(onFault, () => giveUp('ETIMEDOUT', h2.NGHTTP2_CANCEL)), config.handshakeTimeout);
    const onError = guard(onFault, (err: Error) => {
      clearTimeout(timer);
      giveUp(reason(err), h2.NGHTTP2_INADEQUATE_SECURITY);
    });
    tls.once('error', onError);
    stream.once('close', () => clearTimeout(timer));
    tls.once('secure', guard(onFault, () => {
      clearTimeout(timer);
      // A bare TLSSocket, unlike one made by tls.Server, does not act on OpenSSL's verdict
      // (tls.authorized stays false, even for a good certificate): ask for it here.
      const verdict = verifyError(tls);
      if (verdict !== null) return giveUp(verdict, h2.NGHTTP2_INADEQUATE_SECURITY);
      tls.off('error', onError);
      tls.on('error', () => {}); // until piping: connectUpstream's hold sees the close
      if (!authenticated(session, stream, peer, onFault)) return void tls.destroy();
      const cert = tls.getPeerCertificate();
      const client = printable([cert?.subject?.CN].flat().join(','));
      connectUpstream(stream, peer, t0, parts, onFault, (tcp) => start(tcp, tls, peer, t0, onFault, client), tls);
    }));
  }

  function start(tcp: Socket, tunnel: ServerHttp2Stream | TLSSocket, peer: string, t0: number, onFault: OnFault, client?: string): void {
    const fields = { peer, client, setupMs: round(performance.now() - t0) };
    log.debug(fields, 'tunnel open');
    pipeTunnel(tunnel, tcp, config.idleTimeout, stats, guard(onFault, (r: PipeResult) => {
      log.debug({ ...fields, end: r.end, bytesFromClient: r.bytesFromClient, bytesToClient: r.bytesToClient, ...(r.error ? { reason: reason(r.error) } : {}) }, 'tunnel closed');
    }));
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
      for (const s of sessions.keys()) s.destroy();
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
