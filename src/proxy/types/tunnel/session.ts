// Client mode's HTTP/2 connection to the tunnel server: one session per destination, shared by
// every tunnel; when it goes away (GOAWAY, closed, failed) the next tunnel opens a new one.
// Streams already open on a session that got GOAWAY finish on it.
import { type ClientHttp2Session, connect, type SecureClientSessionOptions } from 'node:http2';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type SecureContext, connect as tlsConnect } from 'node:tls';
import type { Log } from '../../../lib/log.ts';
import { type FaultSink, guard } from '../../boundary.ts';
import { H2_LIMITS, keepalive, MAX_HEADER_LIST_SIZE, type OnFault, reason, type TunnelStats, type Warnings } from './common.ts';

export interface SessionOptions {
  origin: URL;
  /** https: trust (a context with the configured CA), else the system roots. */
  secureContext?: SecureContext | undefined;
  connectTimeoutMs: number;
  streamWindow: number;
  /** HTTP/2 PING interval (0 = off): a server that stops answering loses the connection. */
  keepaliveMs: number;
  fault: FaultSink;
  log: Log;
  stats: TunnelStats;
  warn: Warnings;
}

export class SessionPool {
  #current: ClientHttp2Session | undefined;
  readonly #all = new Set<ClientHttp2Session>();
  #opts: SessionOptions;
  #closed = false;

  constructor(opts: SessionOptions) {
    this.#opts = opts;
  }

  /** Trust material for sessions opened from now on (rotation). */
  set secureContext(ctx: SecureContext | undefined) {
    this.#opts = { ...this.#opts, secureContext: ctx };
    // New tunnels must use the new trust: the current session stays for its open streams.
    this.#current = undefined;
  }

  /**
   * A stream on `session` got no response in time: the connection may be dead without a FIN
   * (a NAT entry dropped, a VM gone). New tunnels get a new one; open streams keep this one.
   */
  retire(session: ClientHttp2Session): void {
    if (this.#current !== session) return;
    this.#current = undefined;
    if (!session.destroyed) session.close();
  }

  /** The live session, or a new one. */
  get(): ClientHttp2Session {
    if (this.#closed) throw new Error('tunnel listener is closed');
    const s = this.#current;
    if (s && !s.closed && !s.destroyed) return s;
    return this.#open();
  }

  #open(): ClientHttp2Session {
    const { origin, secureContext, connectTimeoutMs, streamWindow, keepaliveMs, fault, log, stats, warn } = this.#opts;
    // Our own socket (Node's default, made here), so that reap() can end it: the session's
    // socket is a proxy that cannot be destroyed.
    const host = origin.hostname.replace(/^\[(.*)\]$/, '$1');
    let socket: Socket | undefined;
    const createConnection = () => {
      socket = origin.protocol === 'https:'
        ? tlsConnect({
            host, port: Number(origin.port || 443), ALPNProtocols: ['h2'], minVersion: 'TLSv1.2',
            ...(isIP(host) ? {} : { servername: host }), ...(secureContext ? { secureContext } : {}),
          })
        : netConnect({ host, port: Number(origin.port || 80) });
      return socket;
    };
    const options: SecureClientSessionOptions = {
      ...H2_LIMITS,
      settings: { initialWindowSize: streamWindow, enablePush: false, maxHeaderListSize: MAX_HEADER_LIST_SIZE },
      createConnection,
    };
    const session = connect(origin, options);
    stats.sessionsTotal++;
    stats.sessionsActive++;
    this.#all.add(session);
    this.#current = session;
    const t0 = performance.now();
    const url = origin.origin;
    const drop = () => {
      if (this.#current === session) this.#current = undefined;
    };
    const onFault: OnFault = (err) => {
      drop();
      fault(err, { url }, session, socket);
    };
    // Node ends a destroyed session's socket only once its writes are flushed: a server that
    // reads nothing (frozen) would keep it for good. Ended connectTimeout later.
    const reap = () => {
      setTimeout(guard(onFault, () => {
        if (!socket || socket.destroyed) return;
        warn.session({ url }, 'tunnel: a TCP connection outlived its HTTP/2 connection by connectTimeout (the server reads nothing); ended it');
        socket.destroy();
      }), connectTimeoutMs).unref();
    };
    const timer = setTimeout(guard(onFault, () => session.destroy(Object.assign(new Error(`no HTTP/2 connection within ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }))), connectTimeoutMs);
    session.once('connect', guard(onFault, () => {
      clearTimeout(timer);
      // A connection-level window as large as a few streams' lets several tunnels run at full
      // speed at once; the per-stream window still bounds each one.
      session.setLocalWindowSize(Math.min(2 ** 31 - 1, streamWindow * 8));
      log.debug({ url, ms: Math.round(performance.now() - t0), alpn: session.alpnProtocol }, 'tunnel HTTP/2 connection open');
    }));
    // A server may send GOAWAY any number of times (RFC 9113 §6.8; a hostile one, thousands):
    // the first of each connection is logged, through a limiter.
    let goneAway = false;
    session.on('goaway', guard(onFault, (code: number) => {
      drop();
      if (goneAway) return;
      goneAway = true;
      if (code === 0) warn.notice({ url }, 'tunnel server sent GOAWAY; new tunnels use a new connection');
      else warn.session({ url, code }, 'tunnel server sent GOAWAY with an error; new tunnels use a new connection');
    }));
    session.on('error', guard(onFault, (err: Error) => {
      drop();
      warn.session({ url, reason: reason(err) }, 'tunnel HTTP/2 connection failed');
      reap();
    }));
    session.on('frameError', guard(onFault, (type: number, code: number) => warn.session({ url, frameType: type, code }, 'tunnel: an HTTP/2 frame to the server could not be sent')));
    session.once('close', guard(onFault, () => {
      clearTimeout(timer);
      drop();
      this.#all.delete(session);
      stats.sessionsActive--;
    }));
    keepalive(session, keepaliveMs, guard(onFault, () => {
      drop();
      stats.keepaliveFailures++;
      warn.session({ url, keepalive: keepaliveMs }, `tunnel: the server did not answer PING within keepalive (${keepaliveMs} ms); closing the HTTP/2 connection and its tunnels`);
      session.destroy();
      reap();
    }));
    // An idle shared session must not keep the init alive on its own.
    session.unref();
    return session;
  }

  /** Destroys every session (their streams with them). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#current = undefined;
    const closing = [...this.#all].map((s) => new Promise<void>((resolve) => {
      if (s.closed && s.destroyed) return resolve();
      s.once('close', () => resolve());
      s.destroy();
    }));
    await Promise.all(closing);
  }
}
