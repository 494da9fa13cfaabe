// Attested TLS (`attest:` on a tls server mode, `verify.attestation` in client mode, `tee-init
// verify`): a tee-init client verifies a tee-init server through the fake launcher and a JWKS
// served on loopback; a wrong image digest is refused before anything reaches the upstream;
// clients that do not offer tee-attest/1 get the listener exactly as before.
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { createAttester } from '../../../src/attest/attester.ts';
import { createAttestationVerifier } from '../../../src/attest/verify-token.ts';
import { ATTEST_ALPN, bindingNonce, EXPORTER_LABEL } from '../../../src/proxy/types/tls/attest.ts';
import { offeredAlpn } from '../../../src/proxy/types/tls/client-hello.ts';
import { confidentialSpaceClaims, createAttestationKey, DEFAULT_IMAGE_DIGEST, type AttestationKey } from '../../fakes/attestation.ts';
import { startTeeServer, type FakeTeeServer } from '../../fakes/teeserver.ts';
import { bundle } from '../../helpers/init.ts';
import { Lines } from '../../helpers/lines.ts';
import { needs } from '../../helpers/tools.ts';
import { closedWithin } from '../psk/peers.ts';
import { echoServer, filePki, records, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-attest-');
const AUDIENCE = 'https://db.example/attested';
let key: AttestationKey;
let tee: FakeTeeServer;
let jwksServer: Server;
let jwks: string;
let debugImage = false;

before(async () => {
  key = await createAttestationKey();
  tee = await startTeeServer({
    socketPath: join(shared.dir, 'teeserver.sock'), key,
    claims: () => confidentialSpaceClaims(debugImage ? { dbgstat: 'enabled' } : {}),
  });
  jwksServer = createServer((req, res) => {
    if (req.url !== '/jwks') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(key.jwks));
  });
  jwksServer.listen(0, '127.0.0.1');
  await once(jwksServer, 'listening');
  jwks = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`;
});
after(async () => {
  jwksServer.closeAllConnections();
  jwksServer.close();
  await tee.close();
});

/** A strict listener with attest:, in front of an echo backend; the attester bound as the pipeline makes it. */
async function attestedServer(t: TestContext, extra: Record<string, unknown> = {}) {
  const backend = await echoServer(t);
  const server = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, attest: { audience: AUDIENCE }, ...extra }, 'info',
    { attester: createAttester(tee.socketPath) });
  return { backend, server };
}

async function attestedClient(t: TestContext, serverPort: number, require: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return startTls(t, shared.pki, {
    mode: 'client', connect: `127.0.0.1:${serverPort}`, tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'localhost' },
    verify: { attestation: { audience: AUDIENCE, require, jwks, ...extra } },
  });
}

async function plainExchange(port: number, text: string): Promise<string> {
  const { connect } = await import('node:net');
  const c = connect({ host: '127.0.0.1', port });
  c.on('error', () => {});
  const lines = new Lines(c);
  c.write(`${text}\n`);
  try {
    return await lines.next();
  } finally {
    c.destroy();
  }
}

describe('attested TLS', () => {
  test('a tee-init client verifies a tee-init server: the token is bound to the connection, then bytes flow', async (t) => {
    const { server } = await attestedServer(t);
    const client = await attestedClient(t, server.port, { 'submods.container.image_digest': DEFAULT_IMAGE_DIGEST, swname: 'CONFIDENTIAL_SPACE' });
    const before = tee.requests.length;
    assert.equal(await plainExchange(client.port, 'hello attested'), 'hello attested');
    const asked = tee.requests.slice(before).filter((r) => r.path === '/v1/token');
    assert.equal(asked.length, 1, 'one token per attested connection');
    assert.equal(asked[0]!.options!.audience, AUDIENCE);
    const nonces = asked[0]!.options!.nonces as string[];
    assert.equal(nonces.length, 1);
    assert.match(nonces[0]!, /^[A-Za-z0-9_-]{43}$/, 'base64url of 32 exporter bytes, no padding');
    assert.equal(client.handle.stats().connections_established_total, 1);
    assert.equal(server.handle.stats().attestations_total, 1);
    assert.equal(client.handle.stats().attestation_refusals_total, 0);
  });

  test('a wrong image digest is refused in one line naming the claim; nothing reaches the upstream', async (t) => {
    const { backend, server } = await attestedServer(t);
    let bytes = 0;
    backend.server.on('connection', (sock) => sock.on('data', (c: Buffer) => (bytes += c.length)));
    const client = await attestedClient(t, server.port, { 'submods.container.image_digest': `sha256:${'00'.repeat(32)}` });
    const { connect } = await import('node:net');
    const c = connect({ host: '127.0.0.1', port: client.port });
    c.on('error', () => {});
    c.write('must not arrive\n');
    await closedWithin(c);
    const line = records(client.log, 'handshake with the remote peer failed')[0];
    assert.ok(line, client.log.text());
    assert.match(String(line.reason), /attestation refused: .*claim submods\.container\.image_digest is "sha256:ab12/);
    await server.handle.close(); // every upstream connection of the server side is closed: its bytes are counted
    assert.equal(bytes, 0, 'the client\'s bytes never went past the verifying client');
    assert.equal(client.handle.stats().connections_established_total, 0);
    assert.equal(client.handle.stats().attestation_refusals_total, 1);
  });

  test('a debug image is refused unless allowDebug: true', async (t) => {
    const { server } = await attestedServer(t);
    debugImage = true;
    t.after(() => (debugImage = false));
    const strict = await attestedClient(t, server.port);
    const { connect } = await import('node:net');
    const c = connect({ host: '127.0.0.1', port: strict.port });
    c.on('error', () => {});
    await closedWithin(c);
    assert.match(String(records(strict.log, 'handshake with the remote peer failed')[0]?.reason), /claim dbgstat is "enabled".*allowDebug: true accepts it/);
    const lenient = await attestedClient(t, server.port, {}, { allowDebug: true });
    assert.equal(await plainExchange(lenient.port, 'debug ok'), 'debug ok');
  });

  test('a server without attest: is refused by a verifying client', async (t) => {
    const backend = await echoServer(t);
    const plain = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const client = await attestedClient(t, plain.port);
    const { connect } = await import('node:net');
    const c = connect({ host: '127.0.0.1', port: client.port });
    c.on('error', () => {});
    await closedWithin(c);
    assert.match(String(records(client.log, 'handshake with the remote peer failed')[0]?.reason), /did not select ALPN tee-attest\/1/);
  });

  test('clients that do not offer tee-attest/1 get the listener as before (no ALPN, h2 only), and no token is asked for', async (t) => {
    if (!needs(t, 'openssl', 'apt-get install openssl')) return;
    const { server } = await attestedServer(t);
    const before = tee.requests.length;
    for (const alpn of [[], ['-alpn', 'h2']]) {
      const p = execa('openssl', ['s_client', '-connect', `127.0.0.1:${server.port}`, '-CAfile', shared.pki.ca.cert,
        '-cert', shared.pki.client.cert, '-key', shared.pki.client.key, '-quiet', ...alpn], { stdin: 'pipe', reject: false, timeout: 60_000 });
      const out = new Lines(p.stdout!);
      p.stdin!.write('plain client\n');
      assert.equal(await out.next(), 'plain client', `${alpn.join(' ') || 'no ALPN'}`);
      p.kill('SIGKILL');
      await p;
    }
    assert.equal(tee.requests.length, before, 'no token for clients that did not ask');
  });

  test('bytes a client sends right after the handshake are held, not lost, while the token is fetched', async (t) => {
    const { server } = await attestedServer(t);
    const s: TLSSocket = tlsConnect({
      host: '127.0.0.1', port: server.port, ca: readFileSync(shared.pki.ca.cert), servername: 'localhost',
      cert: readFileSync(shared.pki.client.cert), key: readFileSync(shared.pki.client.key), ALPNProtocols: ['h2', ATTEST_ALPN],
    });
    await once(s, 'secureConnect');
    assert.equal(s.alpnProtocol, ATTEST_ALPN);
    s.write('early bytes\n');
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    const verify = createAttestationVerifier({ audience: AUDIENCE, require: {}, jwks, field: 'test' });
    const want = Buffer.from('early bytes\n');
    while (Buffer.concat(chunks).length < 4 || Buffer.concat(chunks).length < 4 + Buffer.concat(chunks).readUInt32BE(0) + want.length) await once(s, 'data');
    const all = Buffer.concat(chunks);
    const n = all.readUInt32BE(0);
    const claims = await verify(all.subarray(4, 4 + n).toString(), bindingNonce(s));
    assert.equal(claims.aud, AUDIENCE);
    assert.equal(all.subarray(4 + n).toString(), 'early bytes\n', 'the echo of the early bytes follows the token');
    // The same token does not verify for another connection's exporter value.
    await assert.rejects(verify(all.subarray(4, 4 + n).toString(), Buffer.alloc(32).toString('base64url')), /another connection/);
    s.destroy();
  });

  test('http: mode answers GET /.well-known/tee-attestation itself, with the connection\'s exporter and the client\'s nonce', async (t) => {
    const api = createServer((req, res) => res.end(`backend saw ${req.url}`));
    api.listen(0, '127.0.0.1');
    await once(api, 'listening');
    t.after(() => api.close());
    const port = (api.address() as AddressInfo).port;
    const server = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${port}`, http: {}, attest: { audience: AUDIENCE } }, 'info', { attester: createAttester(tee.socketPath) });
    const s: TLSSocket = tlsConnect({
      host: '127.0.0.1', port: server.port, ca: readFileSync(shared.pki.ca.cert), servername: 'localhost',
      cert: readFileSync(shared.pki.client.cert), key: readFileSync(shared.pki.client.key),
    });
    await once(s, 'secureConnect');
    const exporter = bindingNonce(s); // before the socket closes
    const nonce = 'client-nonce-0123456789';
    s.write(`GET /.well-known/tee-attestation?nonce=${nonce} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    assert.match(text, /^HTTP\/1.1 200 /);
    assert.match(text, /content-type: application\/jwt/i);
    const jwt = text.slice(text.indexOf('\r\n\r\n') + 4);
    const claims = await key.verify(jwt, { audience: AUDIENCE });
    assert.deepEqual(claims.eat_nonce, [exporter, nonce]);
    const short = await fetchVia(server.port, '/.well-known/tee-attestation?nonce=short');
    assert.match(short, /^HTTP\/1.1 400 /);
    const passed = await fetchVia(server.port, '/other');
    assert.match(passed, /backend saw \/other/);
  });

  test('the attester bounds the launcher: past maxConcurrent + maxWaiting a request is refused at once, the rest complete', async () => {
    const attester = createAttester(tee.socketPath, { maxConcurrent: 1, maxWaiting: 1, timeoutMs: 60_000 });
    tee.fault({ hang: true, times: 1 });
    const nonce = 'n'.repeat(43);
    const first = attester.token({ audience: AUDIENCE, type: 'OIDC', nonces: [nonce] });
    await tee.waitForRequest((r) => r.fault === 'hang', 30_000);
    const second = attester.token({ audience: AUDIENCE, type: 'OIDC', nonces: [nonce] });
    await assert.rejects(attester.token({ audience: AUDIENCE, type: 'OIDC', nonces: [nonce] }), /1 attestation tokens in flight and 1 waiting: refused/);
    assert.deepEqual(attester.stats(), { inFlight: 1, waiting: 1, issued: 0, refusedBusy: 1, failed: 0 });
    tee.clearFaults();
    await tee.close(); // ends the hung exchange: the first fails, and the second gets the slot
    await assert.rejects(first);
    await assert.rejects(second); // the socket is gone now
    tee = await startTeeServer({ socketPath: tee.socketPath, key, claims: () => confidentialSpaceClaims(debugImage ? { dbgstat: 'enabled' } : {}) });
    assert.ok(await attester.token({ audience: AUDIENCE, type: 'OIDC', nonces: [nonce] }), 'the slots were given back');
    assert.deepEqual(attester.stats(), { inFlight: 0, waiting: 0, issued: 1, refusedBusy: 1, failed: 2 });
  });

  test('PKI tokens: verified through their x5c chain to the pinned root; another root, or a broken chain, is refused', async (t) => {
    const { createPki } = await import('../../helpers/pki.ts');
    const { importPKCS8, SignJWT } = await import('jose');
    const { X509Certificate } = await import('node:crypto');
    const a = createPki(join(shared.dir, 'pki-a'), { caName: 'attestation root A' });
    const b = createPki(join(shared.dir, 'pki-b'), { caName: 'attestation root B' });
    const roots = createServer((req, res) => res.end(readFileSync(req.url === '/a' ? a.ca.cert : b.ca.cert)));
    roots.listen(0, '127.0.0.1');
    await once(roots, 'listening');
    t.after(() => roots.close());
    const base = `http://127.0.0.1:${(roots.address() as AddressInfo).port}`;
    const der = (p: string) => new X509Certificate(readFileSync(p)).raw.toString('base64');
    const nonce = 'x'.repeat(43);
    const sign = async (chain: string[]) => new SignJWT({ ...confidentialSpaceClaims(), aud: AUDIENCE, eat_nonce: nonce })
      .setProtectedHeader({ alg: 'ES256', x5c: chain }).setIssuedAt().setExpirationTime('1h')
      .sign(await importPKCS8(readFileSync(a.server.key, 'utf8'), 'ES256'));
    const verifier = (root: string) => createAttestationVerifier({ audience: AUDIENCE, require: { swname: 'CONFIDENTIAL_SPACE' }, pkiRoot: `${base}${root}`, field: 'test' });
    const good = await sign([der(a.server.cert), der(a.ca.cert)]);
    assert.equal((await verifier('/a')(good, nonce)).swname, 'CONFIDENTIAL_SPACE');
    assert.equal((await verifier('/a')(await sign([der(a.server.cert)]), nonce)).aud, AUDIENCE, 'a chain may stop below the root');
    await assert.rejects(verifier('/b')(good, nonce), /does not end at the pinned attestation root/);
    await assert.rejects(verifier('/a')(await sign([der(a.server.cert), der(b.ca.cert)]), nonce), /certificate 0 of x5c is not signed by certificate 1/);
    await assert.rejects(verifier('/a')(await sign([der(b.server.cert), der(b.ca.cert)]), nonce), /does not end at the pinned|signature/, 'a leaf whose key did not sign the token');
  });

  test('the ClientHello parser finds the offer (and finds nothing in what is not a ClientHello)', () => {
    assert.equal(offeredAlpn(Buffer.from([0x16, 3, 1])), undefined, 'needs more');
    assert.deepEqual(offeredAlpn(Buffer.from('GET / HTTP/1.1\r\n')), []);
    assert.deepEqual(offeredAlpn(Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0, 0])), [], 'a cut hello offers nothing');
    assert.equal(EXPORTER_LABEL, 'EXPORTER-tee-init-attestation');
  });

  test('tee-init verify prints the verified claims, and refuses a wrong digest with 77', async (t) => {
    const { server } = await attestedServer(t);
    const args = ['verify', '--audience', AUDIENCE, '--jwks', jwks, '--ca', shared.pki.ca.cert, '--servername', 'localhost',
      '--cert', shared.pki.client.cert, '--key', shared.pki.client.key];
    const ok = await execa(process.execPath, [bundle, ...args, '--require', `submods.container.image_digest=${DEFAULT_IMAGE_DIGEST}`, `127.0.0.1:${server.port}`], { reject: false });
    assert.equal(ok.exitCode, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as Record<string, unknown>;
    assert.equal(out.imageDigest, DEFAULT_IMAGE_DIGEST);
    assert.equal(out.serverCertificateChecked, true);
    const bad = await execa(process.execPath, [bundle, ...args, '--require', 'submods.container.image_digest=sha256:00', `127.0.0.1:${server.port}`], { reject: false });
    assert.equal(bad.exitCode, 77);
    assert.match(bad.stderr, /^tee-init verify: 127\.0\.0\.1:\d+: refused: attestation policy not met: claim submods\.container\.image_digest is /);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });
});

async function fetchVia(port: number, path: string): Promise<string> {
  const s: TLSSocket = tlsConnect({
    host: '127.0.0.1', port, ca: readFileSync(shared.pki.ca.cert), servername: 'localhost',
    cert: readFileSync(shared.pki.client.cert), key: readFileSync(shared.pki.client.key),
  });
  await once(s, 'secureConnect');
  s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}
