// Readiness: the listener opens only once the backend accepts (issue 5, "Runs alongside the
// supervised child").
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect, createServer } from 'node:net';
import { test } from 'node:test';
import { InitError } from '../../../src/lib/errors.ts';
import { waitForPort } from '../../../src/proxy/types/psk/index.ts';
import { until } from '../../helpers/lines.ts';
import { freePort, memoryLog, pskConnect, serverOptions, startProxy } from './peers.ts';

async function refusedAt(port: number): Promise<boolean> {
  const s = tcpConnect({ host: '127.0.0.1', port });
  return new Promise((resolve) => {
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

test('waitForPort resolves once the port accepts, after polling', async (t) => {
  const port = await freePort();
  const { log, lines } = memoryLog('debug');
  const waiting = waitForPort({ host: '127.0.0.1', port }, log, { intervalMs: 20, timeoutMs: 10_000 });
  await until(() => lines.some((l) => l.includes('not ready yet')), 'the first failed attempt');
  const server = createServer((s) => s.destroy());
  server.listen(port, '127.0.0.1');
  t.after(() => server.close());
  await waiting;
  assert.ok(lines.some((l) => l.includes('psk upstream accepts connections')));
});

test('waitForPort gives up at its deadline with exit 69, naming the address', async () => {
  const port = await freePort();
  const { log } = memoryLog();
  await assert.rejects(waitForPort({ host: '127.0.0.1', port }, log, { intervalMs: 20, timeoutMs: 150 }), (err: unknown) => {
    assert.ok(err instanceof InitError);
    assert.equal(err.exitCode, 69);
    assert.match(err.message, new RegExp(`psk.connect 127\\.0\\.0\\.1:${port} did not accept a connection within 150 ms \\(ECONNREFUSED\\)`));
    return true;
  });
});

test('waitForPort stops at once when aborted', async () => {
  const port = await freePort();
  const ac = new AbortController();
  const waiting = waitForPort({ host: '127.0.0.1', port }, memoryLog().log, { intervalMs: 10_000, timeoutMs: 60_000, signal: ac.signal });
  ac.abort(new Error('shutting down'));
  await assert.rejects(waiting, /shutting down/);
});

test('the proxy does not listen before its backend accepts, then serves', async (t) => {
  const listenPort = await freePort();
  const backendPort = await freePort();
  const starting = startProxy(t, serverOptions(backendPort, { listen: `127.0.0.1:${listenPort}`, ready: { intervalMs: 20 } }));
  let started = false;
  void starting.then(() => (started = true));
  assert.equal(await refusedAt(listenPort), true, 'nothing listens while the backend is down');
  assert.equal(started, false);
  const backend = createServer((s) => s.pipe(s));
  backend.listen(backendPort, '127.0.0.1');
  t.after(() => backend.close());
  const proxy = await starting;
  assert.equal(proxy.address.port, listenPort);
  const c = await pskConnect(listenPort);
  c.write('up');
  assert.equal(String((await once(c, 'data'))[0]), 'up');
  c.destroy();
});

test('aborting the start-up while waiting rejects and leaves nothing listening', async (t) => {
  const listenPort = await freePort();
  const ac = new AbortController();
  const starting = startProxy(t, serverOptions(await freePort(), { listen: `127.0.0.1:${listenPort}`, signal: ac.signal }));
  ac.abort(new Error('SIGTERM during bootstrap'));
  await assert.rejects(starting, /SIGTERM during bootstrap/);
  assert.equal(await refusedAt(listenPort), true);
});

test('a readiness target other than the upstream', async (t) => {
  const health = createServer((s) => s.destroy());
  health.listen(0, '127.0.0.1');
  await once(health, 'listening');
  t.after(() => health.close());
  const port = (health.address() as { port: number }).port;
  // The upstream is down, but readiness looks at the health port: start-up succeeds.
  const proxy = await startProxy(t, serverOptions(await freePort(), { ready: { target: `127.0.0.1:${port}` } }));
  assert.ok(proxy.address.port > 0);
});

