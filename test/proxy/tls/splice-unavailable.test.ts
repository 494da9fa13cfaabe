// Permissive plaintext when splice(2) cannot be used in a listener thread (koffi or a libc
// symbol missing, forced here through the test hook): Node's pipe serves every connection, and
// the cause and its cost are said once, not per connection and not never. A file of its own:
// the hook's effect lasts for the thread (this process).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { spliceFaultsForTests } from '../../../src/proxy/splice.ts';
import { until } from '../../helpers/lines.ts';
import { memoryLog } from '../../helpers/log.ts';
import { echoServer, filePki, readAll, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-splice-unavailable-');

test('splice unavailable: one warning naming the cause and the cost, and every connection served through Node', async (t) => {
  spliceFaultsForTests.load = Object.assign(new Error('Cannot find module koffi'), { code: 'ERR_MODULE_NOT_FOUND' });
  t.after(() => delete spliceFaultsForTests.load);
  const echo = await echoServer(t);
  const log = memoryLog('warn');
  // Two listeners in one thread (workers: 0 puts them all in the init's): still one line.
  const a = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${echo.port}` }, log);
  const b = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${echo.port}` }, log);
  for (const port of [a.port, b.port, a.port, b.port]) {
    const c = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
    await once(c, 'connect');
    c.end(Buffer.alloc(100_000, 'n'));
    assert.equal((await readAll(c)).length, 100_000);
  }
  await until(() => a.handle.stats().connections_active === 0 && b.handle.stats().connections_active === 0, 'the connections to close');
  const warnings = log.records().filter((r) => String(r.message).includes('splice(2) is unavailable'));
  assert.equal(warnings.length, 1, log.text());
  assert.equal(warnings[0]!.reason, 'ERR_MODULE_NOT_FOUND');
  assert.match(String(warnings[0]!.message), /through Node: CPU ~3× per MiB; set TEE_INIT_SPLICE=off to silence/);
  assert.equal((a.handle.stats().connection_faults_total ?? 0) + (b.handle.stats().connection_faults_total ?? 0), 0);
});
