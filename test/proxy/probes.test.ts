// A connect-and-close (a load balancer's health check, `nc -z`) is a probe, not a failure: it
// frees its slot at once (not at the handshake deadline), logs no WARNING, and is counted in
// probes_total, not handshake_failures_total. In the init's thread here (workers: 0);
// test/proxy/worker-limits.test.ts shows the same through workers.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { metrics } from '../../src/proxy/stats.ts';
import { startPskProxy } from '../../src/proxy/types/psk/index.ts';
import { until } from '../helpers/lines.ts';
import { memoryLog } from '../helpers/log.ts';
import { echoServer, IDENTITY, KEY, listenLocal } from './psk/peers.ts';
import { pkiFor, startTls } from './tls/peers.ts';

/** Connects, then leaves before sending a byte: with a FIN (`nc -z`) or a reset. */
async function probe(port: number, how: 'fin' | 'reset'): Promise<void> {
  const s = tcpConnect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  await once(s, 'connect');
  if (how === 'fin') s.end();
  else s.resetAndDestroy();
  await once(s, 'close');
}

const TEN_MINUTES = 600_000;

for (const mode of ['strict', 'permissive'] as const) {
  test(`tls ${mode}: probes free their slot at once and are not failures`, async (t) => {
    const backend = await echoServer(t);
    const { handle, port, log } = await startTls(t, pkiFor(t), { mode, connect: `127.0.0.1:${backend.port}`, handshakeTimeout: TEN_MINUTES }, 'info');
    await probe(port, 'fin');
    await probe(port, 'reset');
    await until(() => handle.stats().connections_active === 0 && handle.stats().probes_total === 2, 'both probes gone', 30_000);
    assert.equal(handle.stats().handshake_failures_total, 0);
    assert.deepEqual(log.records().filter((r) => r.severity === 'WARNING'), []);
  });
}

test('psk server: probes free their slot at once and are not failures', async (t) => {
  const backend = await echoServer(t);
  const { log, records } = memoryLog('info');
  const proxy = await startPskProxy({
    mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, identities: new Map([[IDENTITY, KEY]]),
    timeouts: { handshakeMs: TEN_MINUTES }, log, ready: false,
  });
  t.after(() => proxy.close());
  await probe(proxy.address.port, 'fin');
  await probe(proxy.address.port, 'reset');
  await until(() => proxy.stats().active === 0 && proxy.stats().probes === 2, 'both probes gone', 30_000);
  assert.equal(metrics(proxy.stats()).handshake_failures_total, 0);
  assert.deepEqual(records().filter((r) => r.severity === 'WARNING'), []);
  // A client that sends bytes that are not TLS is still a failure.
  const s = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
  s.on('error', () => {});
  s.end('PING\r\n');
  await once(s, 'close');
  await until(() => proxy.stats().handshakeFailures === 1, 'the failed handshake', 30_000);
});

test('psk client mode: a local probe that resets while the session is being set up is counted apart, not as a failure', async (t) => {
  // A remote that accepts TCP and never answers: the session is still in its handshake when the probe leaves.
  const silent = createServer((s) => s.on('error', () => {}));
  const { port } = await listenLocal(t, silent);
  const { log, records } = memoryLog('info');
  const proxy = await startPskProxy({ mode: 'client', listen: '127.0.0.1:0', connect: `127.0.0.1:${port}`, identity: IDENTITY, key: KEY, timeouts: { handshakeMs: TEN_MINUTES }, log });
  t.after(() => proxy.close());
  // A reset: a FIN alone is a half-close the session must carry (`nc < /dev/null` reading a
  // server's greeting), so it holds its slot until the session is up or the handshake deadline.
  await probe(proxy.address.port, 'reset');
  await until(() => proxy.stats().active === 0 && proxy.stats().probes === 1, 'the probe gone', 30_000);
  assert.equal(proxy.stats().handshakeFailures + proxy.stats().upstreamFailures, 0);
  assert.deepEqual(records().filter((r) => r.severity === 'WARNING'), []);
});
