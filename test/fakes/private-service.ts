// A private Cloud Run service, as its front door behaves: https only, and every request must carry
// `Authorization: Bearer <Google-signed ID token>` whose signature verifies against Google's
// keys (the fake GCP's), issuer accounts.google.com, audience = the service URL, not expired.
// Behind the check: echo and streaming endpoints, and a record of what arrived.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { GOOGLE_ISSUER } from './iamcredentials.ts';

export interface PrivateServiceOptions {
  /** The service URL, e.g. https://hello-abc.a.run.app: the audience it requires. */
  url: string;
  /** PEM certificate (chain) and key for its TLS. */
  cert: string | Buffer;
  key: string | Buffer;
  /** Other audiences it accepts (Cloud Run's custom audiences); the URL always is one. */
  audiences?: string[];
  /** Google's public keys (the fake GCP's googleKey.jwks), or the attestation service's. */
  jwks: JSONWebKeySet;
  /** The issuer it trusts (default accounts.google.com; a verifier of attestation tokens: confidentialcomputing). */
  issuer?: string;
  /** The clock expiry is checked against (shared with the fake's, to move time in tests). */
  now?: () => number;
}

export interface ServiceRecord {
  method: string;
  path: string;
  /** The Host header that arrived, and the TLS server name the client asked for. */
  host: string | undefined;
  servername: string | undefined;
  /** The raw Authorization header (a test value, or a token: tests compare, never print it). */
  authorization: string | undefined;
  ok: boolean;
  why?: string;
  email?: string;
  /** Request headers, hop-by-hop ones included if they got through (they must not). */
  headers: IncomingMessage['headers'];
}

export interface PrivateService {
  url: string;
  port: number;
  records: ServiceRecord[];
  /** TLS connections accepted so far (keep-alive: fewer than requests). */
  connections(): number;
  close(): Promise<void>;
}

export async function startPrivateService(options: PrivateServiceOptions): Promise<PrivateService> {
  const audience = options.url.replace(/\/+$/, '');
  const keys = createLocalJWKSet(options.jwks);
  const now = options.now ?? Date.now;
  const records: ServiceRecord[] = [];
  let connections = 0;

  const verify = async (req: IncomingMessage): Promise<{ ok: true; email: string } | { ok: false; why: string }> => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return { ok: false, why: 'no bearer token' };
    try {
      const { payload } = await jwtVerify(m[1]!, keys, { issuer: options.issuer ?? GOOGLE_ISSUER, audience: [audience, ...(options.audiences ?? [])], algorithms: ['RS256'], currentDate: new Date(now()) });
      // An attestation token names no account: say which image it attests instead.
      const digest = (payload.submods as { container?: { image_digest?: string } } | undefined)?.container?.image_digest;
      return { ok: true, email: payload.email !== undefined ? String(payload.email) : digest ? `image ${digest}` : '' };
    } catch (err) {
      return { ok: false, why: `${(err as { code?: string }).code ?? 'invalid'}: ${(err as Error).message}` };
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', audience);
    const record: ServiceRecord = {
      method: req.method ?? '',
      path: url.pathname,
      host: req.headers.host,
      servername: (req.socket as TLSSocket).servername || undefined,
      authorization: req.headers.authorization,
      ok: false,
      headers: req.headers,
    };
    records.push(record);
    const v = await verify(req);
    if (!v.ok) {
      record.why = v.why;
      req.resume();
      const body = JSON.stringify({ error: 'unauthorized', why: v.why });
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' });
      return res.end(body);
    }
    record.ok = true;
    record.email = v.email;
    if (url.pathname === '/echo') {
      // Streams the body back as it arrives (chunked both ways).
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream', 'x-service': 'echo' });
      req.pipe(res);
      return;
    }
    if (url.pathname === '/bytes') {
      const n = Number(url.searchParams.get('n') ?? '0');
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let left = n;
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    const hash = createHash('sha256');
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      hash.update(c);
      size += c.length;
    }
    const body = JSON.stringify({ method: req.method, path: url.pathname, query: url.search, email: v.email, host: req.headers.host, bodyBytes: size, bodySha256: hash.digest('hex'), test: req.headers['x-test'] });
    res.writeHead(200, { 'content-type': 'application/json', 'x-service': 'hello', connection: 'keep-alive' });
    res.end(body);
  };

  const server: Server = createServer({ cert: options.cert, key: options.key, keepAliveTimeout: 10_000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: audience,
    port,
    records,
    connections: () => connections,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
