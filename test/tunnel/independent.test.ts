// The tunnel against HTTP/2 implementations that are not ours: Python's h2 as server and
// client, curl (nghttp2) as client. They check what is on the wire (method, path, authority,
// Authorization) and that half-close maps to END_STREAM both ways.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import { execa } from 'execa';
import { Lines } from '../helpers/lines.ts';
import { needs } from '../helpers/tools.ts';
import { congratsServer, exchange, jwtMinter, startTunnel, tempDir, twoPkis } from './peers.ts';

const PY = '/usr/bin/python3';
const PEER = join(import.meta.dirname, 'h2peer.py');
const GREETING = 'Congrats! You have connected through the tunnel.\n';

async function h2Server(t: TestContext): Promise<{ port: number; requests: Lines }> {
  const proc = execa(PY, [PEER, 'server'], { reject: false, stdout: 'pipe', stderr: 'inherit' });
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  const lines = new Lines(proc.stdout);
  const m = await lines.until(/^listening (\d+)$/, 10_000);
  return { port: Number(m[1]), requests: lines };
}

test('tee-init client → Python h2 server: POST with path, authority and the bearer token on the wire', async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const h2 = await h2Server(t);
  const minter = await jwtMinter(t);
  const client = await startTunnel(t, 'out', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${h2.port}/tunnel?x=1`, token: { kind: 'id-token', credentials: 'alice' },
  }, undefined, minter);
  assert.equal(await exchange(client.port, 'abc\n'), 'hello from h2\nabc\n');
  const headers = JSON.parse((await h2.requests.until(/^\{.*/, 5_000))[0]) as Record<string, string>;
  assert.equal(headers[':method'], 'POST');
  assert.equal(headers[':path'], '/tunnel?x=1');
  assert.equal(headers[':scheme'], 'http');
  assert.equal(headers[':authority'], `127.0.0.1:${h2.port}`);
  assert.equal(headers.authorization, `Bearer ${minter.issued[0]}`);
  // The token is nowhere in the listener's log.
  assert.ok(!client.log.text().includes(minter.issued[0]!.split('.')[2]!));
});

test('tee-init client → Python h2 server: CONNECT carries only :method and :authority (RFC 9113 §8.5)', async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const h2 = await h2Server(t);
  const client = await startTunnel(t, 'out', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${h2.port}/`, method: 'CONNECT', authority: 'backend.internal:7777',
  });
  assert.equal(await exchange(client.port, 'xyz'), 'hello from h2\nxyz');
  const headers = JSON.parse((await h2.requests.until(/^\{.*/, 5_000))[0]) as Record<string, string>;
  assert.deepEqual(Object.keys(headers).filter((k) => k.startsWith(':')).sort(), [':authority', ':method']);
  assert.equal(headers[':method'], 'CONNECT');
  assert.equal(headers[':authority'], 'backend.internal:7777');
});

test('Python h2 client → tee-init server: CONNECT (any authority goes to `connect` only) and POST', async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, path: '/t' });
  const connect = await execa(PY, [PEER, 'client', String(server.port), 'CONNECT', 'evil.example:25', 'via CONNECT\n'], { timeout: 20_000, stripFinalNewline: false });
  assert.equal(connect.stdout, `status 200\n${GREETING}via CONNECT\n`);
  const post = await execa(PY, [PEER, 'client', String(server.port), 'POST', '/t', 'via POST\n'], { timeout: 20_000, stripFinalNewline: false });
  assert.equal(post.stdout, `status 200\n${GREETING}via POST\n`);
  const wrong = await execa(PY, [PEER, 'client', String(server.port), 'POST', '/elsewhere', 'x'], { timeout: 20_000, stripFinalNewline: false });
  assert.equal(wrong.stdout, 'status 404\nnot a tunnel path\n');
  const get = await execa(PY, [PEER, 'client', String(server.port), 'GET', '/t', ''], { timeout: 20_000, stripFinalNewline: false });
  assert.match(get.stdout, /^status 405\n/);
  assert.equal(backend.accepted, 2);
});

test('curl --http2-prior-knowledge → tee-init server: a POST body is the TCP stream, the response body is the answer', async (t) => {
  if (!needs(t, 'curl', 'apt-get install curl')) return;
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true });
  const r = await execa('curl', ['-sS', '--http2-prior-knowledge', '-H', 'Expect:', '-H', 'content-type: application/octet-stream',
    '--data-binary', '@-', `http://127.0.0.1:${server.port}/`], { input: 'from curl\n', timeout: 20_000, stripFinalNewline: false });
  assert.equal(r.stdout, `${GREETING}from curl\n`);
});

test('curl over TLS (ALPN h2) → tee-init server with its certificate: POST tunnel', async (t) => {
  if (!needs(t, 'curl', 'apt-get install curl')) return;
  const { pki, secrets } = twoPkis(tempDir(t, 'tee-init-tunnel-'));
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'h2_cert', key: 'h2_key' } }, secrets);
  const r = await execa('curl', ['-sS', '--http2', '--cacert', pki.ca.cert, '-H', 'Expect:', '--data-binary', '@-', '-w', '\n%{http_version}',
    `https://localhost:${server.port}/`], { input: 'over TLS\n', timeout: 20_000, stripFinalNewline: false });
  assert.equal(r.stdout, `${GREETING}over TLS\n\n2`);
});

/** Builds test/tunnel/h2peer.go into .cache (once per source version). */
async function goPeer(): Promise<string> {
  const source = join(import.meta.dirname, 'h2peer.go');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const bin = join(import.meta.dirname, '..', '..', '.cache', `h2peer-${hash}`);
  if (!existsSync(bin)) {
    mkdirSync(dirname(bin), { recursive: true });
    await execa('go', ['build', '-o', `${bin}.tmp`, source], { env: { GO111MODULE: 'off', GOCACHE: join(dirname(bin), 'go-build') } });
    renameSync(`${bin}.tmp`, bin);
  }
  return bin;
}

for (const method of ['CONNECT', 'POST'] as const) {
  test(`tee-init client → Go net/http server (HTTP/2 over TLS): ${method}, full duplex, half-close`, async (t) => {
    if (!needs(t, 'go', 'apt-get install golang-go')) return;
    const { secrets, pki } = twoPkis(tempDir(t, 'tee-init-tunnel-'));
    const bin = await goPeer();
    const proc = execa(bin, [join(pki.dir, 'h2server.crt'), join(pki.dir, 'h2server.key')], { reject: false, stdout: 'pipe', stderr: 'inherit' });
    t.after(async () => {
      proc.kill('SIGKILL');
      await proc;
    });
    const lines = new Lines(proc.stdout);
    const port = Number((await lines.until(/^listening (\d+)$/, 30_000))[1]);
    const client = await startTunnel(t, 'out', {
      type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `https://localhost:${port}/tunnel`, method, tls: { ca: 'ca' },
    }, secrets);
    assert.equal(await exchange(client.port, 'to go\n'), 'hello from go\nto go\n');
    const seen = JSON.parse((await lines.until(/^\{.*/, 5_000))[0]) as Record<string, string>;
    assert.equal(seen.proto, 'HTTP/2.0');
    assert.equal(seen.method, method);
    assert.equal(seen.host, `localhost:${port}`);
    if (method === 'POST') assert.equal(seen.path, '/tunnel');
  });
}
