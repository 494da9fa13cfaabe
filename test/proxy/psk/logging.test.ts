// Security rule: no key or share ever reaches the log, at any level. One session at trace level
// goes through every path that logs (start, readiness, connections, each kind of failure, close).
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { connect as tcpConnect } from 'node:net';
import { once } from 'node:events';
import { test } from 'node:test';
import { combineShares } from '../../../src/proxy/types/psk/index.ts';
import { until } from '../../helpers/lines.ts';
import { needs } from '../../helpers/tools.ts';
import { ALICE, BOB, clientOptions, freePort, INSTALL, memoryLog, pskConnect, readAll, sClient, serverOptions, startProxy, startRedis } from './peers.ts';

/** Every encoding in which a secret could plausibly be written. */
function encodings(secret: Buffer): string[] {
  return [
    secret.toString('hex'), secret.toString('hex').toUpperCase(), secret.toString('base64'), secret.toString('base64url'),
    secret.toString('base64').slice(0, 20), // a prefix, in case a line was cut
    [...secret].join(','), // a Buffer passed to JSON.stringify as { type: 'Buffer', data: [...] }
  ];
}

test('a full session at trace level logs identities, peers and bytes, and never a share or key', async (t) => {
  if (!needs(t, 'openssl', INSTALL.openssl) || !needs(t, 'redis-cli', INSTALL.redis)) return;
  const redis = await startRedis(t);
  if (!redis) return;
  const { log, lines } = memoryLog('trace');
  const shares = [{ name: 'share_a', value: `${ALICE}\n` }, { name: 'share_b', value: BOB }];
  const concatKey = combineShares(shares, { method: 'sha256-concat' }, 'Client1');
  const hkdfKey = combineShares(shares, { method: 'hkdf-sha256', salt: 'log-test', info: 'Client2' }, 'Client2');
  const secrets = [Buffer.from(ALICE, 'hex'), Buffer.from(BOB, 'hex'), Buffer.from(ALICE), Buffer.from(BOB), Buffer.from(concatKey), Buffer.from(hkdfKey)];

  const server = await startProxy(t, serverOptions(redis.port, {
    log, tls: { tls12: true }, timeouts: { handshakeMs: 300, idleMs: 400 },
    identities: new Map([['Client1', concatKey], ['Client2', hkdfKey]]),
  }));
  const client = await startProxy(t, clientOptions(server.address.port, { log, identity: 'Client2', key: hkdfKey }));

  // Good sessions: redis-cli through both modes, openssl over 1.3 and 1.2.
  assert.equal((await execa('redis-cli', ['-p', String(client.address.port), 'SET', 'k', 'v'])).stdout, 'OK');
  for (const extra of [['-tls1_3'], ['-tls1_2', '-cipher', 'PSK-AES256-GCM-SHA384']]) {
    const c = sClient(t, server.address.port, { keyHex: concatKey.toString('hex'), extra });
    c.write('GET k\r\nQUIT\r\n');
    assert.equal(await c.out.next(), '$1\r');
    assert.equal(await c.exit, 0);
  }
  // Failures: wrong key, unknown identity, handshake timeout, idle timeout, upstream down.
  assert.notEqual(await sClient(t, server.address.port, { keyHex: hkdfKey.toString('hex'), identity: 'Client1' }).exit, 0);
  assert.notEqual(await sClient(t, server.address.port, { identity: 'Nobody', keyHex: concatKey.toString('hex') }).exit, 0);
  const silent = tcpConnect({ host: '127.0.0.1', port: server.address.port });
  silent.on('error', () => {});
  await once(silent, 'close');
  const idle = await pskConnect(server.address.port, { key: concatKey, identity: 'Client1' });
  await once(idle, 'close');
  const down = await startProxy(t, serverOptions(await freePort(), { log, ready: false, identities: new Map([['Client1', concatKey]]) }));
  const d = await pskConnect(down.address.port, { key: concatKey, identity: 'Client1' });
  await readAll(d);
  await until(() => server.stats().idleTimeouts === 1, 'the idle timeout');
  await client.close();
  await server.close();
  await down.close();

  const text = lines.join('');
  for (const msg of ['psk proxy listening', 'psk connection open', 'psk connection closed', 'psk handshake failed',
    'psk upstream unreachable', 'psk proxy closed', 'psk upstream accepts connections']) {
    assert.ok(text.includes(msg), `expected a "${msg}" record`);
  }
  const closed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.message === 'psk connection closed');
  assert.ok(closed.some((r) => r.identity === 'Client2' && (r.bytesFromClient as number) > 0 && typeof r.peer === 'string'));
  for (const secret of secrets) {
    for (const form of encodings(secret)) {
      assert.ok(!text.includes(form), `secret material (${form.slice(0, 6)}…) in the log`);
    }
  }
});

test('failed handshakes are logged one line each up to a burst, then counted once per window', async (t) => {
  const backend = await freePort(); // nothing listens: the handshakes fail before it matters
  const { log, records } = memoryLog('warn');
  const server = await startProxy(t, serverOptions(backend, { log, ready: false, logLimit: { burst: 3, windowMs: 1500 } }));
  const attempts = 10;
  for (let i = 0; i < attempts; i++) {
    await assert.rejects(pskConnect(server.address.port, { key: Buffer.alloc(32, 7) }));
  }
  await until(() => records().some((r) => r.kind === 'psk handshake failures'), 'the summary line', 5000);
  const failures = records().filter((r) => String(r.message).startsWith('psk handshake failed'));
  const summary = records().find((r) => r.kind === 'psk handshake failures')!;
  assert.equal(failures.length, 3);
  assert.equal(summary.suppressed, attempts - 3);
  assert.match(String(summary.message), /psk handshake failures: 7 more in the last 1\.5s, not logged one by one/);
  assert.equal(server.stats().handshakeFailures, attempts, 'every failure is still counted');
});
