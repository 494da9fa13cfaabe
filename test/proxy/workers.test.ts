// Listeners served from worker threads (SO_REUSEPORT): the same behaviour as in the init's
// thread, counters summed over the workers, reload and close reaching every worker, and the
// secrets handed over by message as fresh copies (the init's own are untouched).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { tlsListenerSchema } from '../../src/config/listeners/tls.ts';
import { tlsType } from '../../src/proxy/types/tls/type.ts';
import { startInWorkers, workerThreads } from '../../src/proxy/workers.ts';
import { until } from '../helpers/lines.ts';
import { memoryLog } from '../helpers/log.ts';
import { echoServer, filePki, mtlsConnect, readAll, replyAtEof } from './tls/peers.ts';

const shared = filePki('tee-init-workers-');

function secrets(): Map<string, Buffer> {
  return new Map([['ca', readFileSync(shared.pki.ca.cert)], ['cert', readFileSync(shared.pki.server.cert)], ['key', readFileSync(shared.pki.server.key)]]);
}

test('two workers on one port: TLS and plaintext served, counters summed, closed cleanly', async (t) => {
  const backend = await replyAtEof(t);
  const held = secrets();
  const config = tlsListenerSchema.parse({ type: 'tls', mode: 'permissive', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } });
  const { log } = memoryLog('info');
  const handle = await startInWorkers({ name: 'w', field: 'listeners.w', config, type: tlsType, count: 2, secret: (n) => held.get(n)!, log });
  t.after(() => handle.close());
  assert.notEqual(handle.address.port, 0);
  // The init's own copies are untouched (the workers got fresh ones).
  assert.match(held.get('key')!.toString(), /PRIVATE KEY/);

  for (let i = 0; i < 8; i++) {
    const s = i % 2 ? await mtlsConnect(handle.address.port, shared.pki, shared.pki.client, true) : tcpConnect({ host: '127.0.0.1', port: handle.address.port, allowHalfOpen: true });
    s.end('abc');
    assert.equal((await readAll(s)).toString(), 'got 3 bytes\n');
  }
  await until(() => handle.stats().connections_established_total === 8, 'the workers\' counters (pushed each second)');
  assert.equal(handle.stats().plaintext_connections_total, 4);
  assert.equal(handle.stats().bytes_from_client_total, 24);
  await handle.close();
  const refused = tcpConnect({ host: '127.0.0.1', port: handle.address.port });
  await assert.rejects(new Promise((resolve, reject) => (refused.once('connect', resolve), refused.once('error', reject))), /ECONNREFUSED/);
});

test('reload reaches every worker; a bad key is refused with 65 by the workers and the old material kept', async (t) => {
  const backend = await echoServer(t);
  const held = secrets();
  const config = tlsListenerSchema.parse({ type: 'tls', mode: 'strict', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } });
  const handle = await startInWorkers({ name: 'w', field: 'listeners.w', config, type: tlsType, count: 2, secret: (n) => held.get(n)!, log: memoryLog('warn').log });
  t.after(() => handle.close());
  held.set('key', readFileSync(shared.pki.client.key));
  await assert.rejects(handle.reload(), (err: Error & { exitCode?: number }) => err.exitCode === 65 && /listeners\.w\.tls\.key/.test(err.message));
  const s = await mtlsConnect(handle.address.port, shared.pki);
  s.destroy();
  held.set('key', readFileSync(shared.pki.server.key));
  await handle.reload();
});

test('concurrent reloads each get their own answer: a refusal never settles the next request (ids)', async (t) => {
  const backend = await echoServer(t);
  const held = secrets();
  const config = tlsListenerSchema.parse({ type: 'tls', mode: 'strict', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } });
  // Each reload reads the key once per worker: the first reload's two reads get a key that does
  // not match the certificate, the second reload's two get the right one.
  let reads = 0;
  const bad = readFileSync(shared.pki.client.key);
  const secret = (n: string) => (n === 'key' && reads++ >= 2 && reads <= 4 ? bad : held.get(n)!);
  const handle = await startInWorkers({ name: 'w', field: 'listeners.w', config, type: tlsType, count: 2, secret, log: memoryLog('warn').log });
  t.after(() => handle.close());
  reads = 2; // the two starts read the good key
  // Both requests are in each worker's queue before either answers: each worker answers the
  // first with an error and the second with success, in that order.
  const first = handle.reload();
  const second = handle.reload();
  const [r1, r2] = await Promise.allSettled([first, second]);
  assert.equal(r1.status, 'rejected');
  assert.equal((r1 as PromiseRejectedResult).reason.exitCode, 65);
  assert.equal(r2.status, 'fulfilled', `the good rotation was reported as failed: ${(r2 as PromiseRejectedResult).reason}`);
});

test('a worker thread that dies is replaced: the port keeps serving, counters never go back, reload reaches the new one', async (t) => {
  const backend = await replyAtEof(t);
  const held = secrets();
  const config = tlsListenerSchema.parse({ type: 'tls', mode: 'permissive', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } });
  const { log, records } = memoryLog('info');
  const handle = await startInWorkers({ name: 'w', field: 'listeners.w', config, type: tlsType, count: 2, secret: (n) => held.get(n)!, log });
  t.after(() => handle.close());
  const roundTrip = async () => {
    const s = tcpConnect({ host: '127.0.0.1', port: handle.address.port, allowHalfOpen: true });
    s.end('abc');
    return (await readAll(s)).toString();
  };
  for (let i = 0; i < 4; i++) assert.equal(await roundTrip(), 'got 3 bytes\n');
  await until(() => handle.stats().connections_established_total === 4, 'the counters of both workers');

  // Both die (as after a bug or an out-of-memory in the thread): with no replacement the port would go dark.
  const [first, second] = handle[workerThreads]();
  await Promise.all([first!.terminate(), second!.terminate()]);
  await until(() => records().filter((r) => r.message === 'listeners.w: worker thread replaced').length === 2, 'both workers replaced', 15_000);
  assert.equal(records().filter((r) => r.severity === 'ERROR' && /a worker thread ended unexpectedly \(exit 1\); a new one starts in 100 ms/.test(String(r.message))).length, 2);
  for (let i = 0; i < 4; i++) assert.equal(await roundTrip(), 'got 3 bytes\n');
  await until(() => handle.stats().connections_established_total === 8, 'counters carried over from the dead workers');
  assert.equal(handle.stats().worker_restarts_total, 2);
  assert.equal(handle[workerThreads]().length, 2);
  await handle.reload();
});
