// `http:` in server modes: the proxy speaks HTTP/1.1 to the backend so that it can tell the
// backend who the client is. node:http parses both sides (no hand-written parser); bodies stream
// both ways (chunked or sized, any length), keep-alive works on both sides, and the headers that
// only the proxy may set are removed from what the client sent, always.
//
// Neither side is trusted: the client's certificate values are encoded (./xfcc.ts), the
// program's status line and headers are checked before they are passed on (an invalid one is a
// 502, not a throw in PID 1), and every handler runs inside guard() (../../boundary.ts).
import { Agent, type ClientRequest, createServer, type IncomingMessage, request, type ServerResponse, validateHeaderName, validateHeaderValue } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type FaultSink, guard } from '../../boundary.ts';
import { type Fields, KEEPALIVE_MS, type ModeContext, opened, peerOf, reason } from '../../connection.ts';
import type { LimitedWarn } from '../../../lib/log-limit.ts';
import { NONCE_BYTES } from '../../../lib/launcher-limits.ts';
import type { AttestServer } from './attest.ts';
import type { PeerIdentity } from './identity.ts';
import { CLIENT_CERT, CLIENT_CERT_CHAIN, clientCertHeader, XFCC, xfccElement } from './xfcc.ts';

export const ATTESTATION_PATH = '/.well-known/tee-attestation';

export type XfccMode = 'sanitize-set' | 'forward' | 'off';

export interface HttpOptions {
  xfcc: XfccMode;
  clientCert: boolean;
  /** From the start of a connection, or the end of its previous response, to the end of the next request's headers. */
  headersTimeoutMs: number;
  /** Our own certificate's identity (XFCC By), read per request: a reload swaps it. */
  own(): PeerIdentity | undefined;
  fault: FaultSink;
  /** Set with `attest:`: GET /.well-known/tee-attestation is answered here, never forwarded. */
  attest?: AttestServer | undefined;
  /** Rate-limited lines for header deadlines that expired on a request under way. */
  warnSlowHeaders: LimitedWarn;
}

const XFP = 'x-forwarded-proto';
const XFF = 'x-forwarded-for';

// RFC 9110 §7.6.1: meant for one hop only; node:http sets its own framing on each side.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

// RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ); node:http throws on anything else.
const BAD_REASON_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

const REQUEST_TIMEOUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

export interface HttpForwarder {
  /** Serves HTTP on an accepted client: `secure` and `client` are undefined for a plaintext one. */
  serve(socket: Socket, secure: TLSSocket | undefined, client: PeerIdentity | undefined, fields: Fields, t0: number): void;
  /** Connections closed by the header deadline with a request under way (`http_header_timeouts_total`). */
  readonly headerTimeouts: number;
  close(): void;
}

/** The header name as a CGI/WSGI program sees it: `X_Forwarded_Client_Cert` is HTTP_X_FORWARDED_CLIENT_CERT too. */
function cgiName(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** Why node:http could not pass this response on (it would throw), or undefined when it can. */
function invalidResponse(upRes: IncomingMessage, headers: string[]): string | undefined {
  const code = upRes.statusCode ?? 0;
  // 1xx other than 101 are interim (node:http waits for the final one); 101 is an upgrade nobody asked for.
  if (!Number.isInteger(code) || code < 200 || code > 599) return `status code ${code} is not 200-599`;
  if (BAD_REASON_CHAR.test(upRes.statusMessage ?? '')) return `the reason phrase of its ${code} has a control character`;
  for (let i = 0; i < headers.length; i += 2) {
    try {
      validateHeaderName(headers[i]!);
      validateHeaderValue(headers[i]!, headers[i + 1]!);
    } catch {
      return `its header #${i / 2 + 1} is not a valid HTTP field`;
    }
  }
  return undefined;
}

export function createHttpForwarder(ctx: ModeContext, options: HttpOptions): HttpForwarder {
  const { fault } = options;
  const who = new WeakMap<Socket, PeerIdentity | undefined>();
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: KEEPALIVE_MS, scheduling: 'lifo' });
  const deadline = headerDeadline(ctx, options);
  const server = createServer({
    // The idle timeout below bounds a connection; a 1 GiB upload must not hit a request deadline.
    requestTimeout: 0,
    keepAliveTimeout: 60_000,
    noDelay: true,
  }, guard((err, req: IncomingMessage, res: ServerResponse) => fault(err, { peer: peerOf(req.socket) }, res, req.socket), forward));
  server.on('clientError', guard((err, _e: Error, socket: Socket) => fault(err, { peer: peerOf(socket) }, socket), (err: Error, socket: Socket) => {
    // A malformed request: answer 400 if the socket can still take it, then close.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
    ctx.log.debug({ reason: reason(err) }, `${ctx.label} http request refused`);
  }));

  function headersFor(req: IncomingMessage, client: PeerIdentity | undefined): string[] {
    const connectionTokens = new Set(String(req.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean));
    const out: string[] = [];
    const forwardedFor: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue;
      // Underscore spellings too: a CGI/WSGI program reads them as the real one (Envoy drops them).
      const cgi = cgiName(name);
      if (cgi === CLIENT_CERT || cgi === CLIENT_CERT_CHAIN) continue;
      // forward trusts what a TLS-authenticated client sent; a plaintext client is trusted with nothing.
      if (cgi === XFCC && (options.xfcc !== 'forward' || client === undefined)) continue;
      // The scheme is ours to say; the client's chain of addresses is kept and ours appended (below).
      if (cgi === XFP) continue;
      if (cgi === XFF) {
        if (name === XFF) forwardedFor.push(raw[i + 1]!);
        continue;
      }
      out.push(raw[i]!, raw[i + 1]!);
    }
    // As Envoy with use_remote_address: the connection's own scheme, and the peer appended.
    const secure = typeof (req.socket as Partial<TLSSocket>).getPeerCertificate === 'function';
    out.push('X-Forwarded-Proto', secure ? 'https' : 'http');
    const address = req.socket.remoteAddress?.replace(/^::ffff:/, '');
    if (address) forwardedFor.push(address);
    if (forwardedFor.length) out.push('X-Forwarded-For', forwardedFor.join(', '));
    if (client && options.xfcc === 'sanitize-set') out.push('X-Forwarded-Client-Cert', xfccElement(client, options.own()));
    if (client && options.clientCert) out.push('Client-Cert', clientCertHeader(client));
    return out;
  }

  function forward(req: IncomingMessage, res: ServerResponse): void {
    const client = who.get(req.socket);
    const peer = peerOf(req.socket);
    deadline.requestStarted(req.socket, res);
    if (options.attest && (req.url === ATTESTATION_PATH || req.url?.startsWith(`${ATTESTATION_PATH}?`))) return attestation(req, res, options.attest);
    let up: ClientRequest | undefined;
    // A fault in this request's handling ends this request's connection (both sides) only.
    const fail = (err: unknown) => fault(err, { peer, method: req.method }, up, res, req.socket);
    const g = <A extends unknown[]>(fn: (...args: A) => unknown) => guard(fail, fn);
    let bytesIn = 0;

    const badGateway = (why: string, fields: Record<string, unknown>, message: string) => {
      ctx.stats.upstreamFailures++;
      ctx.warnUpstream({ peer, method: req.method, bytesIn, reason: why, ...fields }, `${ctx.label} ${message}; answering 502`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' }).end(`bad gateway: ${why}\n`);
    };

    const upstream = request({
      host: ctx.upstream.host, port: ctx.upstream.port, method: req.method, path: req.url, agent,
      headers: headersFor(req, client), setHost: false,
    });
    up = upstream;
    res.on('close', g(() => {
      if (!res.writableFinished) upstream.destroy();
    }));
    res.on('error', () => upstream.destroy()); // the client went away mid-response: nothing to answer
    req.on('error', () => upstream.destroy());
    req.on('data', g((c: Buffer) => {
      bytesIn += c.length;
      ctx.stats.bytesFromClient += c.length;
    }));
    req.pipe(upstream);
    upstream.on('socket', g((s: Socket) => {
      ctx.track(s);
      // The connect timeout bounds a new connection only; a reused one is up already.
      if (!s.connecting) return;
      const timer = setTimeout(g(() => upstream.destroy(Object.assign(new Error(`no connection within ${ctx.timeouts.connectMs} ms`), { code: 'ETIMEDOUT' }))), ctx.timeouts.connectMs);
      s.once('connect', () => clearTimeout(timer));
      s.once('close', () => clearTimeout(timer));
    }));
    upstream.on('response', g((upRes: IncomingMessage) => {
      const raw = upRes.rawHeaders;
      const headers: string[] = [];
      const connectionTokens = new Set(String(upRes.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean));
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        if (!HOP_BY_HOP.has(name) && !connectionTokens.has(name)) headers.push(raw[i]!, raw[i + 1]!);
      }
      const invalid = invalidResponse(upRes, headers);
      if (invalid) {
        // The program's connection is in an unknown state: not reused.
        upRes.socket.destroy();
        badGateway(`the program's response was not valid HTTP: ${invalid}`, {}, 'upstream sent an invalid response');
        return;
      }
      res.writeHead(upRes.statusCode!, upRes.statusMessage, headers);
      upRes.on('data', g((c: Buffer) => (ctx.stats.bytesToClient += c.length)));
      upRes.pipe(res);
      upRes.on('error', () => {
        if (!res.writableEnded) res.destroy();
      });
    }));
    // The proxy removes Upgrade from every request, so a 101 is the program's error.
    upstream.on('upgrade', g((_upRes: IncomingMessage, s: Socket) => {
      s.destroy();
      badGateway('the program\'s response was not valid HTTP: 101 Switching Protocols to a request without Upgrade', {}, 'upstream sent an invalid response');
    }));
    upstream.on('error', g((err: Error) => {
      if (res.headersSent) {
        // Mid-response: cut it. After a whole answer (a 502 above): nothing more to do.
        if (!res.writableEnded) res.destroy();
        return;
      }
      // node:http's parser refused what the program sent (HPE_*): reachable, but not HTTP.
      const code = reason(err);
      if (code.startsWith('HPE_')) badGateway(`the program's response was not valid HTTP (${code})`, {}, 'upstream sent an invalid response');
      else badGateway('upstream unreachable', { reason: code }, 'upstream unreachable');
    }));
  }

  /** A token bound to this connection (and to the client's ?nonce=, 10–74 bytes, if given). */
  function attestation(req: IncomingMessage, res: ServerResponse, attest: AttestServer): void {
    req.resume();
    const answer = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) }).end(body);
    };
    if (req.method !== 'GET') return answer(405, `${ATTESTATION_PATH} takes GET\n`);
    const secure = req.socket as Partial<TLSSocket>;
    if (typeof secure.exportKeyingMaterial !== 'function') return answer(400, 'attestation is bound to a TLS connection: use https\n');
    const nonce = new URL(req.url!, 'https://x').searchParams.get('nonce') ?? undefined;
    if (nonce !== undefined && (Buffer.byteLength(nonce) < NONCE_BYTES.min || Buffer.byteLength(nonce) > NONCE_BYTES.max)) {
      return answer(400, `nonce must be ${NONCE_BYTES.min}-${NONCE_BYTES.max} bytes\n`);
    }
    const fail = (err: unknown) => fault(err, { peer: peerOf(req.socket) }, res, req.socket);
    attest.token(secure as TLSSocket, nonce).then(
      guard<[string]>(fail, (jwt) => answer(200, jwt, 'application/jwt')),
      guard<[Error]>(fail, (err) => {
        ctx.warnUpstream({ peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`, reason: reason(err) }, `${ctx.label} could not attest a ${ATTESTATION_PATH} request`);
        if (!res.headersSent) answer(503, 'attestation unavailable\n');
      }),
    );
  }

  return {
    serve(socket, secure, client, fields, t0) {
      who.set(socket, client);
      opened(ctx, secure, fields, t0);
      if (ctx.timeouts.idleMs > 0) socket.setTimeout(ctx.timeouts.idleMs, guard((err) => fault(err, fields, socket), () => socket.destroy()));
      deadline.connectionStarted(socket, fields);
      server.emit('connection', socket);
      // Permissive mode paused a plaintext socket to look at its first bytes.
      socket.resume();
    },
    get headerTimeouts() {
      return deadline.expired;
    },
    close() {
      agent.destroy();
      server.close();
    },
  };
}

interface Waiting {
  fields: Fields;
  /** The latest request's response: once it closes, the connection waits for the next request. */
  current: ServerResponse | undefined;
  timer: NodeJS.Timeout | undefined;
  /**
   * socket.bytesRead when the deadline was set after a response: more means a request was under
   * way. -1 for a connection's first request: permissive mode read its first bytes before.
   */
  bytesAtStart: number;
}

/**
 * The header deadline: node:http's own headersTimeout runs only on a server that listens (this
 * one is handed sockets), so the proxy keeps its own. A connection must complete a request's
 * headers within `headersTimeoutMs` of its start or of the end of its previous response;
 * otherwise it is closed (a 408 first, unless it sat idle after a response). This bounds a
 * client that trickles header bytes and an idle keep-alive connection alike.
 */
function headerDeadline(ctx: ModeContext, options: HttpOptions) {
  const waiting = new WeakMap<Socket, Waiting>();
  let expired = 0;

  const arm = (socket: Socket, w: Waiting, first = false) => {
    clearTimeout(w.timer);
    w.bytesAtStart = first ? -1 : socket.bytesRead;
    w.timer = setTimeout(guard((err) => options.fault(err, w.fields, socket), () => {
      if (socket.bytesRead === w.bytesAtStart) {
        socket.destroy(); // idle between requests: nothing to say
        return;
      }
      expired++;
      options.warnSlowHeaders({ ...w.fields, headersTimeoutMs: options.headersTimeoutMs },
        `${ctx.label} http request headers incomplete at the header deadline; closing the connection (a slow or trickling client)`);
      if (socket.writable) socket.end(REQUEST_TIMEOUT, () => socket.destroy());
      else socket.destroy();
    }), options.headersTimeoutMs);
  };

  return {
    get expired() {
      return expired;
    },
    connectionStarted(socket: Socket, fields: Fields) {
      const w: Waiting = { fields, current: undefined, timer: undefined, bytesAtStart: 0 };
      waiting.set(socket, w);
      socket.once('close', () => clearTimeout(w.timer));
      arm(socket, w, true);
    },
    /** A request's headers are complete: no deadline until its response is done. */
    requestStarted(socket: Socket, res: ServerResponse) {
      const w = waiting.get(socket);
      if (!w) return;
      w.current = res;
      clearTimeout(w.timer);
      w.timer = undefined;
      // A pipelined request that started meanwhile is the current one: its end arms the deadline.
      res.once('close', () => {
        if (w.current === res && !socket.destroyed) arm(socket, w);
      });
    },
  };
}
