// Client mode: a local TCP listener; each accepted connection becomes one HTTP/2 stream (POST
// or CONNECT) to `url`, with an optional bearer token and optional mutual TLS inside it.
import { type ClientHttp2Session, type ClientHttp2Stream, constants as h2, type IncomingHttpHeaders, type OutgoingHttpHeaders, sensitiveHeaders } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContext, type TLSSocket } from 'node:tls';
import type { TokenSource } from '../../../credentials/token-types.ts';
import { type Destroyable, type FaultSink, guard } from '../../boundary.ts';
import { KEEPALIVE_MS, peerOf, round } from '../../connection.ts';
import type { ListenerEnv } from '../../listener.ts';
import type { PipeResult } from '../../pipe.ts';
import { contextFrom, pipeTunnel, type OnFault, reason, type TunnelStats, warnings } from './common.ts';
import type { TunnelClientConfig } from '../../../config/listeners/tunnel.ts';
import { SessionPool } from './session.ts';

export interface ClientMode {
  server: Server;
  reload(): void;
  close(): Promise<void>;
}

export function createTunnelClient(config: TunnelClientConfig, env: ListenerEnv, stats: TunnelStats, fault: FaultSink): ClientMode {
  const { log } = env;
  const warn = warnings(log);
  const origin = new URL(config.url);
  const target = origin.origin;
  const headers = requestHeaders(config, origin);
  const tokens: TokenSource | undefined = config.token ? env.tokens.source(config.token) : undefined;
  // id-token: the audience is the service's URL unless configured (Cloud Run checks it).
  const audience = config.token?.kind === 'id-token' && config.token.audience === undefined ? target : undefined;

  const outerContext = () => (config.tls ? contextFrom(env, { ca: config.tls.ca }, 'tls') : undefined);
  const innerContext = () => (config.inner ? contextFrom(env, config.inner.tls, 'inner.tls') : undefined);
  let inner = innerContext();
  const pool = new SessionPool({
    origin, secureContext: outerContext(), connectTimeoutMs: config.connectTimeout, streamWindow: config.streamWindow, keepaliveMs: config.keepalive, fault, log, stats, warn,
  });

  const server = createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS, pauseOnConnect: true });
  server.on('connection', (tcp: Socket) => {
    // Everything this tunnel holds, for the fault boundary: ended together.
    const parts: Destroyable[] = [tcp];
    const onFault: OnFault = (err) => fault(err, { peer: peerOf(tcp), url: target }, ...parts);
    guard(onFault, open)(tcp, parts, onFault);
  });

  async function open(tcp: Socket, parts: Destroyable[], onFault: OnFault): Promise<void> {
    const t0 = performance.now();
    const peer = peerOf(tcp);
    let gone = false;
    tcp.once('close', () => (gone = true));
    tcp.on('error', () => tcp.destroy());

    const h: OutgoingHttpHeaders = { ...headers };
    if (tokens) {
      try {
        const token = await tokens.get(audience);
        h.authorization = `Bearer ${token.value}`;
        // Never indexed by HPACK: a token must not sit in a compression table.
        (h as Record<symbol, unknown>)[sensitiveHeaders] = ['authorization'];
      } catch (err) {
        stats.authFailures++;
        warn.auth({ peer, url: target, reason: reason(err) }, 'tunnel: no bearer token; closing the connection');
        tcp.destroy();
        return;
      }
    }
    if (gone) return;

    request(tcp, h, t0, peer, parts, onFault, false);
  }

  /** One stream for `tcp`; `again`: this is the one retry of a stream the server refused unprocessed. */
  function request(tcp: Socket, h: OutgoingHttpHeaders, t0: number, peer: string, parts: Destroyable[], onFault: OnFault, again: boolean): void {
    let stream: ClientHttp2Stream;
    let session: ClientHttp2Session;
    try {
      session = pool.get();
      stream = session.request(h, { endStream: false });
      parts.push(stream);
    } catch (err) {
      warn.tunnel({ peer, url: target, reason: reason(err) }, 'tunnel: cannot open a stream; closing the connection');
      tcp.destroy();
      return;
    }
    // Until the response (or a failure) settles it, the stream and the TCP side watch each other.
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      tcp.off('close', onTcpClose);
      return true;
    };
    const fail = (fields: Record<string, unknown>, message: string) => {
      if (!settle()) return;
      stats.refused++;
      warn.tunnel({ peer, url: target, ...fields }, message);
      if (!stream.destroyed) stream.close(h2.NGHTTP2_CANCEL);
      tcp.destroy();
    };
    const timer = setTimeout(guard(onFault, () => {
      pool.retire(session);
      fail({ reason: 'ETIMEDOUT' }, `tunnel: no response within ${config.connectTimeout} ms; closing the connection (new tunnels use a new HTTP/2 connection)`);
    }), config.connectTimeout);
    // The client left first: cancel quietly.
    const onTcpClose = guard(onFault, () => {
      if (settle() && !stream.destroyed) stream.close(h2.NGHTTP2_CANCEL);
    });
    tcp.once('close', onTcpClose);
    // Refused unprocessed (REFUSED_STREAM, or a GOAWAY that raced it: RFC 9113 §8.7): safe to
    // send again, once; the pool has dropped a connection that went away.
    const retry = () => {
      if (again || settled || tcp.destroyed || stream.rstCode !== h2.NGHTTP2_REFUSED_STREAM) return false;
      settle();
      parts.splice(parts.indexOf(stream), 1);
      request(tcp, h, t0, peer, parts, onFault, true);
      return true;
    };
    const onStreamError = guard(onFault, (err: Error) => {
      if (!retry()) fail({ reason: reason(err), rstCode: stream.rstCode }, 'tunnel stream failed; closing the connection');
    });
    stream.on('error', onStreamError);
    // Reset before any response with a code Node counts as clean is no 'error', so this is
    // where the TCP side learns it.
    stream.once('close', guard(onFault, () => {
      if (!retry()) fail({ rstCode: stream.rstCode }, 'tunnel stream closed before a response; closing the connection');
    }));
    stream.once('response', guard(onFault, (res: IncomingHttpHeaders) => {
      // A 3-digit number or nothing: the status goes into a log field and a message.
      const status = /^\d{3}$/.test(String(res[':status'])) ? Number(res[':status']) : 0;
      if (status < 200 || status > 299) return fail({ status }, `tunnel refused by the server with HTTP ${status}; closing the connection`);
      // onStreamError stays: after settle() it only keeps a late reset from being unhandled
      // (pipe.ts or the inner TLS socket sees the stream end anyway).
      if (!settle()) return;
      if (!inner) return start(tcp, stream, t0, peer, onFault);
      handshake(tcp, stream, inner, t0, peer, parts, onFault);
    }));
  }

  function handshake(tcp: Socket, stream: ClientHttp2Stream, ctx: SecureContext, t0: number, peer: string, parts: Destroyable[], onFault: OnFault): void {
    const { serverName } = config.inner!.tls;
    const tls: TLSSocket = tlsConnect({
      socket: stream as unknown as Socket,
      secureContext: ctx,
      // serverName is required unless anyServerName: true (src/config/listeners/tunnel.ts): then the private
      // CA is the only trust anchor and there is no name to check.
      ...(serverName === undefined ? { checkServerIdentity: () => undefined } : { servername: serverName }),
    });
    parts.push(tls);
    let failed = false;
    const giveUp = (why: string) => {
      if (failed) return;
      failed = true;
      stats.handshakeFailures++;
      warn.handshake({ peer, url: target, reason: why }, 'tunnel inner TLS handshake failed; closing the connection');
      tls.destroy();
      stream.destroy();
      tcp.destroy();
    };
    // A server that refuses our certificate resets the stream with INADEQUATE_SECURITY (TLS 1.3
    // gives its verdict after our side completed: no alert reaches us, server.ts).
    stream.once('close', guard(onFault, () => {
      if (stream.rstCode !== h2.NGHTTP2_INADEQUATE_SECURITY) return;
      clearTimeout(timer);
      giveUp('the tunnel server refused this side\'s inner TLS client certificate (stream reset INADEQUATE_SECURITY; its log names the reason): check that inner.tls.cert chains to the CA the server side trusts');
    }));
    const timer = setTimeout(guard(onFault, () => giveUp('ETIMEDOUT')), config.handshakeTimeout);
    const onError = guard(onFault, (err: Error) => {
      clearTimeout(timer);
      giveUp(reason(err));
    });
    tls.once('error', onError);
    tcp.once('close', guard(onFault, () => {
      if (tls.pending || !tls.encrypted) tls.destroy();
    }));
    tls.once('secureConnect', guard(onFault, () => {
      clearTimeout(timer);
      tls.off('error', onError);
      tls.on('error', () => {}); // pipe.ts sees the end; a refusal is reported by the reset above
      if (tcp.destroyed) return void tls.destroy();
      start(tcp, tls, t0, peer, onFault);
    }));
  }

  function start(tcp: Socket, tunnel: ClientHttp2Stream | TLSSocket, t0: number, peer: string, onFault: OnFault): void {
    const fields = { peer, url: target, setupMs: round(performance.now() - t0) };
    log.debug(fields, 'tunnel open');
    pipeTunnel(tcp, tunnel, config.idleTimeout, stats, guard(onFault, (r: PipeResult) => {
      log.debug({ ...fields, end: r.end, bytesFromClient: r.bytesFromClient, bytesToClient: r.bytesToClient, ...(r.error ? { reason: reason(r.error) } : {}) }, 'tunnel closed');
    }));
    tcp.resume();
  }

  return {
    server,
    reload() {
      const nextInner = innerContext();
      pool.secureContext = outerContext();
      inner = nextInner;
    },
    close: () => pool.close(),
  };
}

/** The request every tunnel stream starts with (DESIGN: same as the envoy-tunnel-client preset). */
export function requestHeaders(config: Pick<TunnelClientConfig, 'method' | 'authority'>, origin: URL): OutgoingHttpHeaders {
  if (config.method === 'CONNECT') {
    // RFC 9113 §8.5: :method and :authority only (Node adds no :scheme or :path for CONNECT).
    return { [h2.HTTP2_HEADER_METHOD]: 'CONNECT', [h2.HTTP2_HEADER_AUTHORITY]: config.authority ?? hostPort(origin) };
  }
  return {
    [h2.HTTP2_HEADER_METHOD]: 'POST',
    [h2.HTTP2_HEADER_SCHEME]: origin.protocol.slice(0, -1),
    [h2.HTTP2_HEADER_AUTHORITY]: origin.host,
    [h2.HTTP2_HEADER_PATH]: `${origin.pathname}${origin.search}`,
  };
}

function hostPort(u: URL): string {
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
}
