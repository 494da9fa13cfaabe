// The listener's numbers are the listener's, however many worker threads serve it (issue 18.5):
// maxConnections and the failure-log budget are shared by the workers (src/lib/thread.ts),
// and a fault that escapes a worker's handlers replaces the worker, never the port or the init.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { test } from 'node:test';
import { tlsListenerSchema } from '../../src/config/listeners/tls.ts';
import { tlsType } from '../../src/proxy/types/tls/type.ts';
import { MAX_DRAINING, startInWorkers, WORKER_HEAP, workerThreads } from '../../src/proxy/workers.ts';
import { until } from '../helpers/lines.ts';
import { memoryLog } from '../helpers/log.ts';
import { echoServer, filePki } from './tls/peers.ts';

const shared = filePki('tee-init-worker-limits-');
const held = new Map([['ca', readFileSync(shared.pki.ca.cert)], ['cert', readFileSync(shared.pki.server.cert)], ['key', readFileSync(shared.pki.server.key)]]);

async function start(t: import('node:test').TestContext, count: number, fields: Record<string, unknown>) {
  const backend = await echoServer(t);
  const config = tlsListenerSchema.parse({
    type: 'tls', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca' }, ...fields,
  });
  const lines: string[] = [];
  const { log, records } = memoryLog('info');
  const handle = await startInWorkers({
    name: 'w', field: 'listeners.w', config, type: tlsType, count, secret: (n) => held.get(n)!, log, logLine: (l) => lines.push(l), drainMs: 120_000,
  });
  t.after(() => handle.close());
  const workerLog = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { handle, workerLog, records };
}

function open(port: number): Promise<Socket> {
  const s = tcpConnect({ host: '127.0.0.1', port });
  s.on('error', () => {}); // a refused connection may be reset
  return once(s, 'connect').then(() => s);
}

for (const count of [2, 4]) {
  test(`maxConnections is the listener's with ${count} workers: exactly 20 of 80 held, one log line`, async (t) => {
    const { handle, workerLog } = await start(t, count, { mode: 'strict', maxConnections: 20, handshakeTimeout: 600_000 });
    const sockets = await Promise.all(Array.from({ length: 80 }, () => open(handle.address.port)));
    t.after(() => sockets.forEach((s) => s.destroy()));
    let closed = 0;
    for (const s of sockets) s.once('close', () => closed++);
    // Silent clients hold their slot (handshake deadline 10 min); the rest are refused at accept.
    await until(() => closed === 60, 'the 60 connections over the limit refused', 30_000);
    await until(() => handle.stats().connections_rejected_total === 60 && handle.stats().connections_active === 20, 'the workers\' counters', 30_000);
    assert.equal(sockets.filter((s) => !s.destroyed).length, 20);
    assert.equal(workerLog().filter((r) => /connection limit reached/.test(String(r.message))).length, 1);
    // Slots are given back: once the held ones go, new connections are taken again.
    for (const s of sockets) s.destroy();
    // Silent clients that leave are probes (a health check), not handshake failures, and free
    // their slot at once (the handshake deadline is 10 minutes).
    await until(() => handle.stats().connections_active === 0 && handle.stats().probes_total === 20, 'the held connections closed', 30_000);
    assert.equal(handle.stats().handshake_failures_total, 0);
    const again = await Promise.all(Array.from({ length: 20 }, () => open(handle.address.port)));
    t.after(() => again.forEach((s) => s.destroy()));
    await until(() => handle.stats().connections_active === 20, 'twenty new connections held', 30_000);
    assert.equal(handle.stats().connections_rejected_total, 60);
    assert.equal(workerLog().filter((r) => /below its connection limit again/.test(String(r.message))).length, 1);
  });
}

for (const count of [2, 4]) test(`the failure-log budget is the listener's with ${count} workers: 20 lines of 100 handshake failures`, async (t) => {
  const { handle, workerLog } = await start(t, count, { mode: 'strict' });
  await Promise.all(Array.from({ length: 100 }, async () => {
    const s = await open(handle.address.port);
    s.end('GET / HTTP/1.0\r\n\r\n'); // not TLS: a failed handshake, not a probe
    await once(s, 'close');
  }));
  await until(() => handle.stats().handshake_failures_total === 100, 'the workers\' counters', 30_000);
  // Per worker, a line is posted before the counters that count it: all lines are in.
  assert.equal(workerLog().filter((r) => r.message === 'tls handshake failed').length, 20);
  assert.equal(handle.stats().probes_total, 0);
});

test('a fault that escapes a worker\'s handlers: the bystanders on it finish, a new worker takes the port, the init lives', async (t) => {
  const { handle, workerLog, records } = await start(t, 2, { mode: 'permissive' });
  const roundTrip = async (s: Socket, text: string) => {
    s.write(text);
    const [chunk] = (await once(s, 'data')) as [Buffer];
    return chunk.toString();
  };
  // Plaintext clients on a permissive port, piped to an echo server; with 8 of them both
  // workers hold some, and every worker faults below: every bystander is on a faulted worker.
  const bystanders = await Promise.all(Array.from({ length: 8 }, () => open(handle.address.port)));
  t.after(() => bystanders.forEach((s) => s.destroy()));
  for (const [i, s] of bystanders.entries()) assert.equal(await roundTrip(s, `before ${i}`), `before ${i}`);

  const [first, second] = handle[workerThreads]();
  first!.postMessage({ op: 'inject-fault', rejection: false });
  second!.postMessage({ op: 'inject-fault', rejection: true });
  await until(() => handle.stats().worker_faults_total === 2, 'both faults reported', 30_000);
  await until(() => records().filter((r) => r.message === 'listeners.w: worker thread replaced').length === 2, 'both workers replaced', 30_000);
  const faultLines = records().filter((r) => /a fault escaped a connection handler/.test(String(r.message)));
  assert.equal(faultLines.length, 2);
  assert.ok(faultLines.every((r) => r.severity === 'ERROR' && /Error at /.test(String(r.reason))), JSON.stringify(faultLines));
  assert.equal(workerLog().filter((r) => r.severity === 'ERROR').length, 0, 'one line per fault, from the init');

  // The bystanders are still served by their (draining) workers, the port by the new ones.
  for (const [i, s] of bystanders.entries()) assert.equal(await roundTrip(s, `after ${i}`), `after ${i}`);
  const fresh = await open(handle.address.port);
  assert.equal(await roundTrip(fresh, 'new'), 'new');
  fresh.destroy();
  assert.equal(handle[workerThreads]().length, 2);
  assert.ok(!handle[workerThreads]().includes(first!) && !handle[workerThreads]().includes(second!));

  // Once their connections are gone, the faulted workers exit; their counters stay in the sums.
  const exited = Promise.all([once(first!, 'exit'), once(second!, 'exit')]);
  for (const s of bystanders) s.destroy();
  await exited;
  await until(() => handle.stats().connections_active === 0 && handle.stats().connections_total === 9, 'the counters of all four workers', 30_000);
  assert.equal(handle.stats().worker_faults_total, 2);
});

test('faulted workers draining at once are bounded per listener: one fault too many ends the oldest one\'s connections', async (t) => {
  const { handle, records } = await start(t, 1, { mode: 'permissive' });
  const replaced = () => records().filter((r) => r.message === 'listeners.w: worker thread replaced').length;
  // A bystander on each faulted worker (one worker: each connection is on the live one).
  const held: Socket[] = [];
  t.after(() => held.forEach((s) => s.destroy()));
  let firstClosed: Promise<unknown> | undefined;
  for (let i = 1; i <= MAX_DRAINING + 1; i++) {
    const s = await open(handle.address.port);
    s.write('x');
    await once(s, 'data'); // piped: the connection is served by the worker that faults next
    held.push(s);
    firstClosed ??= once(s, 'close');
    const [w] = handle[workerThreads]();
    w!.postMessage({ op: 'inject-fault', rejection: false });
    await until(() => replaced() === i, `replacement ${i}`, 30_000);
    // The next bystander must land on the new worker: wait until the faulted one stopped accepting.
    await until(() => records().filter((r) => /stopped accepting/.test(String(r.message))).length === i, `worker ${i} stopped accepting`, 30_000);
  }
  // The first bystander's worker was ended to make room; the others still drain and serve.
  await firstClosed;
  for (const s of held.slice(1)) {
    s.write('y');
    assert.equal(((await once(s, 'data')) as [Buffer])[0].toString(), 'y');
  }
  assert.equal(handle.stats().worker_faults_total, MAX_DRAINING + 1);
  assert.equal(records().filter((r) => /faulted worker threads are draining already/.test(String(r.message))).length, 1);
});

test('a worker that dies holding connections gives their slots back: the limit does not shrink', async (t) => {
  const { handle, records } = await start(t, 2, { mode: 'strict', maxConnections: 6, handshakeTimeout: 600_000 });
  const first = await Promise.all(Array.from({ length: 6 }, () => open(handle.address.port)));
  t.after(() => first.forEach((s) => s.destroy()));
  await until(() => handle.stats().connections_active === 6, 'six held', 30_000);
  // Killed as by an out-of-memory: no 'close' handler of theirs runs to count the slots back.
  await Promise.all(handle[workerThreads]().map((w) => w.terminate()));
  await until(() => records().filter((r) => r.message === 'listeners.w: worker thread replaced').length === 2, 'both workers replaced', 30_000);
  const second = await Promise.all(Array.from({ length: 6 }, () => open(handle.address.port)));
  t.after(() => second.forEach((s) => s.destroy()));
  let refused = 0;
  for (const s of second) s.once('close', () => refused++);
  await until(() => handle.stats().connections_active === 6, 'six held again', 30_000);
  assert.equal(refused, 0);
});

test('a worker\'s heap is bounded; a worker ended while splicing a plaintext connection: the client is closed, every fd of it closed', async (t) => {
  const { handle, records } = await start(t, 1, { mode: 'permissive' });
  const [w] = handle[workerThreads]();
  assert.deepEqual({ ...w!.resourceLimits, codeRangeSizeMb: undefined, stackSizeMb: undefined }, { ...WORKER_HEAP, codeRangeSizeMb: undefined, stackSizeMb: undefined });
  const fds = () => readdirSync('/proc/self/fd').length;
  const before = fds();
  const s = await open(handle.address.port);
  s.write('x'); // plaintext: spliced in the worker's splice thread, which holds duplicates of both fds
  await once(s, 'data');
  const closed = once(s, 'close');
  // Ended as by an out-of-memory: no handler of the worker runs; the init's thread closes what its splice thread held.
  await w!.terminate();
  await closed;
  await until(() => records().some((r) => r.message === 'listeners.w: worker thread replaced'), 'the worker to be replaced', 30_000);
  await until(() => fds() === before, 'the spliced connection\'s fds to be closed', 30_000);
});
