// Test machinery for the tunnel listener type: a real ListenerEnv, a real TokenSources that mints
// JWTs signed by a test key (served as JWKS on loopback http), a PKI with two CAs, and small TCP
// servers to tunnel to. Ports come from the kernel; readiness is awaited.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { Token, TokenConfig, TokenSource, TokenSources } from '../../src/credentials/token-types.ts';
import type { ListenerEnv, ListenerHandle } from '../../src/proxy/listener.ts';
import { tunnelType } from '../../src/proxy/types/tunnel/type.ts';
import type { TunnelConfigInput } from '../../src/config/listeners/tunnel.ts';
import { memoryLog, type MemoryLog } from '../helpers/log.ts';
import { createPki, issue, type Pki } from '../helpers/pki.ts';
import { tempDir } from '../proxy/psk/peers.ts';

export { tempDir };

/** Secrets by name, from files (what materialize would hold). */
export function secretsOf(files: Record<string, string>): Map<string, Buffer> {
  return new Map(Object.entries(files).map(([k, path]) => [k, readFileSync(path)]));
}

export interface Started {
  handle: ListenerHandle;
  port: number;
  log: MemoryLog;
}

/** Parses `config` with the type's own schema and starts it with a real ListenerEnv. */
export async function startTunnel(
  t: TestContext, name: string, config: TunnelConfigInput, secrets = new Map<string, Buffer>(), tokens: TokenSources = noTokens, log: MemoryLog = memoryLog('trace'),
): Promise<Started> {
  const parsed = tunnelType.schema.parse(config);
  const env: ListenerEnv = {
    name,
    log: log.log.child({ listener: name }),
    secret(n) {
      const s = secrets.get(n);
      if (!s) throw new Error(`secret ${n} is not configured`);
      return s;
    },
    tokens,
    signal: new AbortController().signal,
  };
  const handle = await tunnelType.start(parsed, env);
  t.after(() => handle.close());
  return { handle, port: handle.address.port, log };
}

export const noTokens: TokenSources = {
  source() {
    throw new Error('no token sources in this test');
  },
};

export interface Minter extends TokenSources {
  jwksUrl: string;
  /** Every token handed out, to check the leak scan and the header on the wire. */
  issued: string[];
  /** What the next tokens carry. */
  claims: { iss: string; aud?: string; ttlSeconds: number; email?: string };
  gets: number;
}

/**
 * A real TokenSources: mints ES256 JWTs (audience = what the listener asks for, unless
 * `claims.aud` overrides it) with a key whose JWKS is served on a loopback http port.
 */
export async function jwtMinter(t: TestContext): Promise<Minter> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'test-1', alg: 'ES256', use: 'sig' };
  const http = createHttpServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.after(() => http.close());
  const minter: Minter = {
    jwksUrl: `http://127.0.0.1:${(http.address() as AddressInfo).port}/certs`,
    issued: [],
    gets: 0,
    claims: { iss: 'https://accounts.google.com', ttlSeconds: 3600, email: 'caller@alice.iam.gserviceaccount.com' },
    source(config: TokenConfig): TokenSource {
      return {
        async get(audience?: string): Promise<Token> {
          minter.gets++;
          const now = Math.floor(Date.now() / 1000);
          const exp = now + minter.claims.ttlSeconds;
          const value = await new SignJWT({ email: minter.claims.email, email_verified: true })
            .setProtectedHeader({ alg: 'ES256', kid: 'test-1' })
            .setIssuer(minter.claims.iss)
            .setAudience(minter.claims.aud ?? audience ?? config.audience ?? 'none')
            .setSubject('1234567890')
            .setIssuedAt(Math.min(now, exp - 60))
            .setExpirationTime(exp)
            .sign(privateKey);
          minter.issued.push(value);
          return { value, expiresAt: exp * 1000 };
        },
      };
    },
  };
  return minter;
}

/** Two CAs: `pki` (the right one) and `other` (a stranger's, same names). */
export function twoPkis(dir: string): { pki: Pki; other: Pki; secrets: Map<string, Buffer> } {
  const pki = createPki(`${dir}/pki`);
  const other = createPki(`${dir}/other`, { caName: 'some other CA' });
  // A second client cert from the right CA, for a server that serves h2 over TLS.
  const h2 = issue(`${dir}/pki`, pki.ca, 'h2server', 'tunnel front door', [
    'basicConstraints=critical,CA:FALSE', 'extendedKeyUsage=serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  return {
    pki,
    other,
    secrets: secretsOf({
      ca: pki.ca.cert, server_cert: pki.server.cert, server_key: pki.server.key, client_cert: pki.client.cert, client_key: pki.client.key,
      other_ca: other.ca.cert, other_cert: other.client.cert, other_key: other.client.key, h2_cert: h2.cert, h2_key: h2.key,
    }),
  };
}

export interface Backend {
  server: Server;
  port: number;
  /** Connections accepted so far. */
  accepted: number;
}

/** The reference demo's TCP server: says Congrats, then echoes until the client half-closes. */
export async function congratsServer(t: TestContext, greeting = 'Congrats! You have connected through the tunnel.\n'): Promise<Backend> {
  const b: Backend = { server: createServer({ allowHalfOpen: true }, (s) => {
    b.accepted++;
    s.on('error', () => {});
    s.write(greeting);
    s.pipe(s);
  }), port: 0, accepted: 0 };
  b.server.listen(0, '127.0.0.1');
  await once(b.server, 'listening');
  b.port = (b.server.address() as AddressInfo).port;
  t.after(() => new Promise<void>((r) => b.server.close(() => r())));
  return b;
}

/** Connects, sends `input`, half-closes, and returns everything received until the server's FIN. */
export async function exchange(port: number, input: string | Buffer, host = '127.0.0.1'): Promise<string> {
  const s = tcpConnect({ port, host, allowHalfOpen: true });
  await once(s, 'connect');
  s.end(input);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  await once(s, 'end');
  s.destroy();
  return Buffer.concat(chunks).toString();
}

/** Resolves with how the connection ended: 'end' (FIN), 'close' (reset/destroyed) and the bytes received. */
export async function outcome(port: number, input = 'ping\n'): Promise<{ how: 'end' | 'close'; data: string }> {
  const s: Socket = tcpConnect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => {});
  s.write(input);
  const how = await new Promise<'end' | 'close'>((resolve) => {
    s.once('end', () => resolve('end'));
    s.once('close', () => resolve('close'));
  });
  s.destroy();
  return { how, data: Buffer.concat(chunks).toString() };
}
