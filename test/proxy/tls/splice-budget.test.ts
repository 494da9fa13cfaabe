// The pipe capacity a listener thread may hold for spliced connections is bounded (pipe pages
// are charged to the init's user, the program's too: src/proxy/splice.ts PIPE_BUDGET): a
// connection that would exceed it goes through Node's pipe, and splicing resumes when one ends.
// Which path a connection took shows in this process's fds: a spliced one holds two more pipes.
// A file of its own: the budget is set through the test hook for the thread (this process).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { test } from 'node:test';
import { spliceFaultsForTests } from '../../../src/proxy/splice.ts';
import { until } from '../../helpers/lines.ts';
import { echoServer, filePki, readAll, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-splice-budget-');
const pipes = () => readdirSync('/proc/self/fd').filter((fd) => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`).startsWith('pipe:');
  } catch {
    return false; // closed meanwhile (readdir's own fd)
  }
}).length;

async function open(port: number): Promise<Socket> {
  const s = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(s, 'connect');
  s.write('hello');
  // Echoed: through the listener both ways, so handed over to one path or the other.
  for (let got = 0; got < 5; ) got += ((await once(s, 'data')) as [Buffer])[0].length;
  return s;
}

async function finish(s: Socket): Promise<void> {
  s.end(Buffer.alloc(200_000, 'z'));
  assert.equal((await readAll(s)).length, 200_000);
}

test('past the pipe budget, plaintext connections go through Node\'s pipe; splicing resumes when one ends', async (t) => {
  spliceFaultsForTests.pipeBudget = 2 * 256 * 1024; // one connection's two pipes
  t.after(() => delete spliceFaultsForTests.pipeBudget);
  const echo = await echoServer(t);
  const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${echo.port}` });
  // Warm-up: the splice thread and its wake-up pipe stay.
  const w = await open(l.port);
  await finish(w);
  await until(() => l.handle.stats().connections_active === 0, 'the warm-up connection to close');
  const base = pipes();

  const spliced = await open(l.port);
  assert.equal(pipes(), base + 4, 'the first connection is spliced: two pipes, both ends');
  const overBudget = await Promise.all([open(l.port), open(l.port)]);
  assert.equal(pipes(), base + 4, 'connections past the budget hold no pipe');
  await Promise.all([spliced, ...overBudget].map(finish));
  await until(() => l.handle.stats().connections_active === 0, 'the connections to close');
  assert.equal(pipes(), base);

  const again = await open(l.port);
  assert.equal(pipes(), base + 4, 'the budget is free again');
  await finish(again);
  await until(() => l.handle.stats().connections_active === 0, 'the last connection to close');
  assert.equal(l.handle.stats().bytes_from_client_total, 5 * (200_005));
});
