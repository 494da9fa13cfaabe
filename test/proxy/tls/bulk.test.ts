// Bulk through each mode, then a half-close: the backend hashes everything it got and answers
// only after the client's FIN, so a lost, reordered or truncated byte, or a proxy that closes
// both directions on the first end, fails the test. 256 MiB by default: on the shared 2-vCPU CI
// machine 1 GiB through two TLS hops took up to two minutes and starved the suite's
// timing-bound tests; TEE_INIT_BULK_MIB=1024 runs the full GiB (done for issue 11: see the report).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { filePki, listenLocal, mtlsConnect, readAll, startTls } from './peers.ts';

const BULK = Number(process.env.TEE_INIT_BULK_MIB ?? 256) * (1 << 20);
const shared = filePki('tee-init-tls-bulk-');

/** Answers "<bytes> <sha256>" once the client has finished sending. */
async function hashAtEof(t: TestContext): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const h = createHash('sha256');
    let n = 0;
    s.on('data', (d: Buffer) => {
      n += d.length;
      h.update(d);
    });
    s.on('end', () => s.end(`${n} ${h.digest('hex')}\n`));
    s.on('error', () => {});
  });
  return (await listenLocal(t, server)).port;
}

/** Sends `total` bytes (a random block repeated), ends its side, returns the expected answer. */
async function send(s: Socket, total: number): Promise<string> {
  const block = randomBytes(1 << 20);
  const h = createHash('sha256');
  for (let sent = 0; sent < total; sent += block.length) {
    h.update(block);
    if (!s.write(block)) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  return `${total} ${h.digest('hex')}\n`;
}

async function through(s: Socket): Promise<void> {
  const [expected, answer] = await Promise.all([send(s, BULK), readAll(s)]);
  assert.equal(answer.toString(), expected);
}

describe(`${BULK >> 20} MiB and a half-close through each mode`, () => {
  test('client mode → strict mode → backend', async (t) => {
    const backend = await hashAtEof(t);
    const strict = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend}` });
    const client = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${strict.port}` });
    await through(tcpConnect({ host: '127.0.0.1', port: client.port, allowHalfOpen: true }));
    assert.equal(strict.handle.stats().bytes_from_client_total, BULK);
    assert.equal(client.handle.stats().bytes_from_client_total, BULK);
  });

  test('permissive mode, mutual TLS', async (t) => {
    const backend = await hashAtEof(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend}` });
    await through(await mtlsConnect(l.port, shared.pki, shared.pki.client, true));
  });

  test('permissive mode, plaintext', async (t) => {
    const backend = await hashAtEof(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend}` });
    await through(tcpConnect({ host: '127.0.0.1', port: l.port, allowHalfOpen: true }));
    assert.equal(l.handle.stats().plaintext_connections_total, 1);
  });
});
