// `http:` in server modes: the proxy speaks HTTP/1.1 to the backend so that it can tell the
// backend who the client is. node:http parses both sides (no hand-written parser); bodies stream
// both ways (chunked or sized, any length), keep-alive works on both sides, and the headers that
// only the proxy may set are removed from what the client sent, always.
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type Fields, KEEPALIVE_MS, type ModeContext, opened, reason } from '../../connection.ts';
import type { PeerIdentity } from './identity.ts';
import { NONCE_BYTES } from '../../../launcher-limits.ts';
import type { AttestServer } from './attest.ts';
import { CLIENT_CERT, CLIENT_CERT_CHAIN, clientCertHeader, XFCC, xfccElement } from './xfcc.ts';

export const ATTESTATION_PATH = '/.well-known/tee-attestation';

export type XfccMode = 'sanitize-set' | 'forward' | 'off';

export interface HttpOptions {
  xfcc: XfccMode;
  clientCert: boolean;
  /** Our own certificate's identity (XFCC By), read per request: a reload swaps it. */
  own(): PeerIdentity | undefined;
  /** Set with `attest:`: GET /.well-known/tee-attestation is answered here, never forwarded. */
  attest?: AttestServer | undefined;
}

// RFC 9110 §7.6.1: meant for one hop only; node:http sets its own framing on each side.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

export interface HttpForwarder {
  /** Serves HTTP on an accepted client: `secure` and `client` are undefined for a plaintext one. */
  serve(socket: Socket, secure: TLSSocket | undefined, client: PeerIdentity | undefined, fields: Fields, t0: number): void;
  close(): void;
}

export function createHttpForwarder(ctx: ModeContext, options: HttpOptions): HttpForwarder {
  const who = new WeakMap<Socket, PeerIdentity | undefined>();
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: KEEPALIVE_MS, scheduling: 'lifo' });
  const server = createServer({
    // The idle timeout below bounds a connection; a 1 GiB upload must not hit a request deadline.
    requestTimeout: 0,
    keepAliveTimeout: 60_000,
    noDelay: true,
  }, (req, res) => forward(req, res));
  server.on('clientError', (err, socket) => {
    // A malformed request: answer 400 if the socket can still take it, then close.
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
    ctx.log.debug({ reason: reason(err) }, `${ctx.label} http request refused`);
  });

  function headersFor(req: IncomingMessage, client: PeerIdentity | undefined): string[] {
    const connectionTokens = new Set(String(req.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean));
    const out: string[] = [];
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (HOP_BY_HOP.has(name) || connectionTokens.has(name)) continue;
      if (name === CLIENT_CERT || name === CLIENT_CERT_CHAIN) continue;
      // forward trusts what a TLS-authenticated client sent; a plaintext client is trusted with nothing.
      if (name === XFCC && (options.xfcc !== 'forward' || client === undefined)) continue;
      out.push(raw[i]!, raw[i + 1]!);
    }
    if (client && options.xfcc === 'sanitize-set') out.push('X-Forwarded-Client-Cert', xfccElement(client, options.own()));
    if (client && options.clientCert) out.push('Client-Cert', clientCertHeader(client));
    return out;
  }

  function forward(req: IncomingMessage, res: ServerResponse): void {
    if (options.attest && (req.url === ATTESTATION_PATH || req.url?.startsWith(`${ATTESTATION_PATH}?`))) return attestation(req, res, options.attest);
    const client = who.get(req.socket);
    const up = request({
      host: ctx.upstream.host, port: ctx.upstream.port, method: req.method, path: req.url, agent,
      headers: headersFor(req, client), setHost: false,
    });
    let bytesIn = 0;
    req.on('data', (c: Buffer) => {
      bytesIn += c.length;
      ctx.stats.bytesFromClient += c.length;
    });
    req.pipe(up);
    up.on('socket', (s: Socket) => {
      ctx.track(s);
      // The connect timeout bounds a new connection only; a reused one is up already.
      if (!s.connecting) return;
      const timer = setTimeout(() => up.destroy(Object.assign(new Error(`no connection within ${ctx.timeouts.connectMs} ms`), { code: 'ETIMEDOUT' })), ctx.timeouts.connectMs);
      s.once('connect', () => clearTimeout(timer));
      s.once('close', () => clearTimeout(timer));
    });
    up.on('response', (upRes) => {
      const raw = upRes.rawHeaders;
      const headers: string[] = [];
      const connectionTokens = new Set(String(upRes.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean));
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        if (!HOP_BY_HOP.has(name) && !connectionTokens.has(name)) headers.push(raw[i]!, raw[i + 1]!);
      }
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
      upRes.on('data', (c: Buffer) => (ctx.stats.bytesToClient += c.length));
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    up.on('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      ctx.stats.upstreamFailures++;
      ctx.warnUpstream({ peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`, method: req.method, bytesIn, reason: reason(err) },
        `${ctx.label} upstream unreachable; answering 502`);
      res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' }).end('upstream unreachable\n');
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
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
    attest.token(secure as TLSSocket, nonce).then(
      (jwt) => answer(200, jwt, 'application/jwt'),
      (err: Error) => {
        ctx.warnUpstream({ peer: `${req.socket.remoteAddress}:${req.socket.remotePort}`, reason: reason(err) }, `${ctx.label} could not attest a ${ATTESTATION_PATH} request`);
        if (!res.headersSent) answer(503, 'attestation unavailable\n');
      },
    );
  }

  return {
    serve(socket, secure, client, fields, t0) {
      who.set(socket, client);
      opened(ctx, secure, fields, t0);
      if (ctx.timeouts.idleMs > 0) socket.setTimeout(ctx.timeouts.idleMs, () => socket.destroy());
      server.emit('connection', socket);
      // Permissive mode paused a plaintext socket to look at its first bytes.
      socket.resume();
    },
    close() {
      agent.destroy();
      server.close();
    },
  };
}
