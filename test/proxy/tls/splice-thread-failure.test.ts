// A splice thread that fails (its poll(2) forced to fail through the test hook): the connections
// it was moving end as faults with their bytes counted to the end, one warning says it, and the
// next connections go through Node's pipe for a pause instead of a new thread each (which would
// fail them the same way). A file of its own: the pause lasts for the thread (this process).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { test } from 'node:test';
import { spliceFaultsForTests } from '../../../src/proxy/splice.ts';
import { until } from '../../helpers/lines.ts';
import { memoryLog } from '../../helpers/log.ts';
import { echoServer, filePki, readAll, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-splice-failure-');
const openFds = () => readdirSync('/proc/self/fd').length;

async function plainClient(port: number): Promise<Socket> {
  const s = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

async function echoed(s: Socket, n: number): Promise<void> {
  let got = 0;
  while (got < n) got += ((await once(s, 'data')) as [Buffer])[0].length;
}

test('a failed splice thread: its connections end as faults with their bytes, one warning, then Node\'s pipe for a pause', async (t) => {
  const failPoll = new Int32Array(new SharedArrayBuffer(4));
  spliceFaultsForTests.poll = failPoll;
  t.after(() => delete spliceFaultsForTests.poll);
  const echo = await echoServer(t);
  const log = memoryLog('warn');
  const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${echo.port}` }, log);
  const before = openFds();

  // Moving through splice: 300 000 bytes each way, read back in full.
  const first = await plainClient(l.port);
  first.write(Buffer.alloc(300_000, 'f'));
  await echoed(first, 300_000);
  // The next poll fails; a second connection wakes the thread at once (before its live report).
  Atomics.store(failPoll, 0, 1);
  const second = await plainClient(l.port);
  // Ended by the init: a FIN, or a reset if bytes were still unread on its side.
  const gone = (c: Socket) => new Promise((resolve) => c.once('end', resolve).once('close', resolve));
  const ended = [gone(first), gone(second)];
  second.write('s');
  await Promise.all(ended);
  first.destroy();
  second.destroy();
  await until(() => l.handle.stats().connections_active === 0, 'the cut connections to be counted closed');
  let s = l.handle.stats();
  assert.equal(s.connection_faults_total, 2);
  // The bytes the thread moved, though it died before reporting them ('s' went upstream when handed over).
  assert.equal(s.bytes_from_client_total, 300_001);
  assert.equal(s.bytes_to_client_total, 300_000);

  // The poll still fails: the next connections must not be handed to a new thread.
  for (let i = 0; i < 3; i++) {
    const c = await plainClient(l.port);
    c.end(Buffer.alloc(100_000, 'n'));
    assert.equal((await readAll(c)).length, 100_000);
  }
  await until(() => l.handle.stats().connections_active === 0, 'the connections through Node to close');
  s = l.handle.stats();
  assert.equal(s.connection_faults_total, 2);
  assert.equal(s.bytes_from_client_total, 600_001);
  const failures = log.records().filter((r) => String(r.message).includes('the splice thread failed'));
  assert.equal(failures.length, 1, log.text());
  assert.equal(failures[0]!.reason, 'poll failed: EINVAL');
  assert.equal(failures[0]!.connections, 2);
  assert.match(String(failures[0]!.message), /through Node: CPU ~3× per MiB for 30 s/);
  // Every fd the dead thread held (its connections' and its wake-up pipe) was closed.
  await until(() => openFds() === before, 'the dead thread\'s fds to be closed');
});
