// A pipe full in slots before it is full in bytes: a client that stops reading (python, a 2 KiB
// receive buffer) while its upstream streams small writes fills the pipe's 64 slots with small
// chunks; poll then says the upstream is readable and splice(2) into the pipe says EAGAIN, at
// once, forever. The splice thread must wait for the client instead of spinning on a core.
// Counted, not timed: the thread's splice calls over a window once nothing moves any more.
// A file of its own: the call counter is given to the thread when it starts (this process's).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { spliceFaultsForTests } from '../../../src/proxy/splice.ts';
import { until } from '../../helpers/lines.ts';
import { needs } from '../../helpers/tools.ts';
import { filePki, listenLocal, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-splice-stall-');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a client that stops reading small writes: the splice thread waits, it does not spin', async (t) => {
  if (!needs(t, 'python3', 'apt-get install python3')) return;
  const calls = new Int32Array(new SharedArrayBuffer(4));
  spliceFaultsForTests.spliceCalls = calls;
  t.after(() => delete spliceFaultsForTests.spliceCalls);
  let stop = false;
  t.after(() => (stop = true));
  const upstream = await listenLocal(t, createServer((s) => {
    s.setNoDelay(true);
    s.on('error', () => {});
    // Small separate writes, as a pub/sub server's messages.
    const timer = setInterval(() => {
      if (stop) return clearInterval(timer);
      for (let i = 0; i < 20; i++) s.write(Buffer.alloc(100, 'm'));
    }, 1);
  }));
  const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${upstream.port}` });
  const client = spawn('python3', ['-c', [
    'import socket, sys',
    's = socket.socket()',
    's.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)',
    `s.connect(('127.0.0.1', ${l.port}))`,
    "s.send(b'x')",
    'sys.stdin.read()', // until the test ends: never reads the socket
  ].join('\n')], { stdio: ['pipe', 'ignore', 'inherit'] });
  t.after(() => client.kill());
  await until(() => l.handle.stats().bytes_to_client_total! > 0, 'the first bytes to reach the client', 30_000);
  // Nothing moves any more (the live counts are reported each second): the client is full.
  let last = -1;
  for (let i = 0; i < 30 && l.handle.stats().bytes_to_client_total !== last; i++) {
    last = l.handle.stats().bytes_to_client_total!;
    await sleep(2_500);
  }
  assert.equal(l.handle.stats().bytes_to_client_total, last, 'the client never filled up');
  const before = Atomics.load(calls, 0);
  await sleep(2_000);
  const made = Atomics.load(calls, 0) - before;
  assert.ok(made < 1_000, `the splice thread made ${made} splice calls in 2 s with nothing to move`);
});
