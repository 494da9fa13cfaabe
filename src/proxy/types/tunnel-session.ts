// Client mode's HTTP/2 connection to the tunnel server: one session per destination, shared by
// every tunnel; when it goes away (GOAWAY, closed, failed) the next tunnel opens a new one.
// Streams already open on a session that got GOAWAY finish on it.
import { type ClientHttp2Session, connect, type SecureClientSessionOptions } from 'node:http2';
import type { SecureContext } from 'node:tls';
import type { Log } from '../../log.ts';
import { reason, type TunnelStats, type Warnings } from './tunnel-common.ts';

export interface SessionOptions {
  origin: URL;
  /** https: trust (a context with the configured CA), else the system roots. */
  secureContext?: SecureContext | undefined;
  connectTimeoutMs: number;
  streamWindow: number;
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
    const { origin, secureContext, connectTimeoutMs, streamWindow, log, stats, warn } = this.#opts;
    const options: SecureClientSessionOptions = {
      settings: { initialWindowSize: streamWindow, enablePush: false },
      // Node's default (10 MB) would refuse new streams while many tunnels have data in flight.
      maxSessionMemory: 64,
      ...(origin.protocol === 'https:' ? { servername: origin.hostname, minVersion: 'TLSv1.2' as const, ...(secureContext ? { secureContext } : {}) } : {}),
    };
    const session = connect(origin, options);
    stats.sessionsTotal++;
    stats.sessionsActive++;
    this.#all.add(session);
    this.#current = session;
    const t0 = performance.now();
    const drop = () => {
      if (this.#current === session) this.#current = undefined;
    };
    const timer = setTimeout(() => session.destroy(Object.assign(new Error(`no HTTP/2 connection within ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })), connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timer);
      // A connection-level window as large as a few streams' lets several tunnels run at full
      // speed at once; the per-stream window still bounds each one.
      session.setLocalWindowSize(Math.min(2 ** 31 - 1, streamWindow * 8));
      log.debug({ url: origin.origin, ms: Math.round(performance.now() - t0), alpn: session.alpnProtocol }, 'tunnel HTTP/2 connection open');
    });
    session.on('goaway', (code: number) => {
      drop();
      log.info({ url: origin.origin, code }, 'tunnel server sent GOAWAY; new tunnels use a new connection');
    });
    session.on('error', (err) => {
      drop();
      warn.tunnel({ url: origin.origin, reason: reason(err) }, 'tunnel HTTP/2 connection failed');
    });
    session.once('close', () => {
      clearTimeout(timer);
      drop();
      this.#all.delete(session);
      stats.sessionsActive--;
    });
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
