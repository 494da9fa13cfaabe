// Server mode (TLS-PSK in, plain TCP out) against independent peers: openssl s_client and
// stunnel as PSK clients, a real redis-server behind the proxy (issue 5, "Server mode").
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { describe, test, type TestContext } from 'node:test';
import { needs } from '../../helpers/tools.ts';
import {
  IDENTITY, INSTALL, KEY, memoryLog, pskConnect, sClient, serverOptions, startProxy, startRedis, startStunnel, WRONG_KEY_HEX,
} from './peers.ts';

/** PING, SET, GET and QUIT through an s_client session; QUIT makes redis close, and s_client exit. */
async function redisSession(c: ReturnType<typeof sClient>): Promise<void> {
  c.write('PING\r\n');
  assert.equal(await c.out.next(), '+PONG\r');
  c.write('SET tee-init-psk works\r\nGET tee-init-psk\r\n');
  assert.equal(await c.out.next(), '+OK\r');
  assert.equal(await c.out.next(), '$5\r');
  assert.equal(await c.out.next(), 'works\r');
  c.write('QUIT\r\n');
  assert.equal(await c.out.next(), '+OK\r');
  assert.equal(await c.exit, 0, 'redis closed after QUIT, the proxy closed the TLS side, s_client exited');
}

/** "protocol cipher" of each connection, from the proxy's debug log. */
function negotiated(lines: string[]): string[] {
  return lines.map((l) => JSON.parse(l) as Record<string, string>).filter((r) => r.message === 'psk connection open').map((r) => `${r.protocol} ${r.cipher}`);
}

/** A handshake that must fail: s_client exits non-zero, nothing reaches the backend. */
async function refused(t: TestContext, port: number, args: Parameters<typeof sClient>[2]): Promise<void> {
  const c = sClient(t, port, args);
  const code = await c.exit;
  assert.notEqual(code, 0, `s_client ${JSON.stringify(args)} should have failed`);
}

describe('server mode with openssl s_client', () => {
  test('TLS 1.3 (TLS_AES_128_GCM_SHA256) through to redis: PING, SET, GET', async (t) => {
    if (!needs(t, 'openssl', INSTALL.openssl)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const proxy = await startProxy(t, serverOptions(redis.port));
    await redisSession(sClient(t, proxy.address.port));
    const s = proxy.stats();
    assert.equal(s.established, 1);
    assert.equal(s.handshakeFailures, 0);
    assert.equal(s.bytesFromClient, 'PING\r\nSET tee-init-psk works\r\nGET tee-init-psk\r\nQUIT\r\n'.length);
    assert.equal(s.bytesToClient, '+PONG\r\n+OK\r\n$5\r\nworks\r\n+OK\r\n'.length);
  });

  test('TLS 1.3 with TLS_CHACHA20_POLY1305_SHA256', async (t) => {
    if (!needs(t, 'openssl', INSTALL.openssl)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const proxy = await startProxy(t, serverOptions(redis.port));
    await redisSession(sClient(t, proxy.address.port, { extra: ['-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'] }));
  });

  test('TLS 1.2 is refused unless enabled', async (t) => {
    if (!needs(t, 'openssl', INSTALL.openssl)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const proxy = await startProxy(t, serverOptions(redis.port));
    await refused(t, proxy.address.port, { extra: ['-tls1_2', '-cipher', 'PSK-AES256-GCM-SHA384'] });
    assert.equal(proxy.stats().handshakeFailures, 1);
    assert.equal(proxy.stats().established, 0);
  });

  test('TLS 1.2 when enabled: PSK-AES256-GCM-SHA384 and ECDHE-PSK-CHACHA20-POLY1305; 1.3 still works', async (t) => {
    if (!needs(t, 'openssl', INSTALL.openssl)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const { log, lines } = memoryLog('debug');
    const proxy = await startProxy(t, serverOptions(redis.port, { log, tls: { tls12: true } }));
    await redisSession(sClient(t, proxy.address.port, { extra: ['-tls1_2', '-cipher', 'PSK-AES256-GCM-SHA384'] }));
    await redisSession(sClient(t, proxy.address.port, { extra: ['-tls1_2', '-cipher', 'ECDHE-PSK-CHACHA20-POLY1305'] }));
    await redisSession(sClient(t, proxy.address.port));
    // Suites outside the list stay refused.
    await refused(t, proxy.address.port, { extra: ['-tls1_2', '-cipher', 'PSK-AES128-CBC-SHA'] });
    assert.equal(proxy.stats().established, 3);
    assert.deepEqual(negotiated(lines), [
      'TLSv1.2 PSK-AES256-GCM-SHA384', 'TLSv1.2 ECDHE-PSK-CHACHA20-POLY1305', 'TLSv1.3 TLS_AES_128_GCM_SHA256',
    ]);
  });

  describe('handshake fails, and nothing reaches the backend', () => {
    for (const [name, args] of [
      ['wrong key', { keyHex: WRONG_KEY_HEX }],
      ['unknown identity', { identity: 'Mallory' }],
      ['a SHA-384-only TLS 1.3 suite (TLS_AES_256_GCM_SHA384)', { extra: ['-tls1_3', '-ciphersuites', 'TLS_AES_256_GCM_SHA384'] }],
      ['wrong key over TLS 1.2 (enabled)', { keyHex: WRONG_KEY_HEX, extra: ['-tls1_2', '-cipher', 'PSK-AES256-GCM-SHA384'] }],
      ['unknown identity over TLS 1.2 (enabled)', { identity: 'Mallory', extra: ['-tls1_2', '-cipher', 'PSK-AES256-GCM-SHA384'] }],
    ] as const) {
      test(name, async (t) => {
        if (!needs(t, 'openssl', INSTALL.openssl)) return;
        const redis = await startRedis(t);
        if (!redis) return;
        const { log, lines } = memoryLog('warn');
        const proxy = await startProxy(t, serverOptions(redis.port, { log, tls: { tls12: name.includes('1.2') } }));
        await refused(t, proxy.address.port, args);
        assert.equal(proxy.stats().handshakeFailures, 1);
        assert.equal(proxy.stats().established, 0);
        const rec = JSON.parse(lines.find((l) => l.includes('psk handshake failed'))!) as Record<string, unknown>;
        assert.equal(rec.severity, 'WARNING');
        assert.match(String(rec.peer), /^127\.0\.0\.1:\d+$/);
        if ('identity' in args) assert.equal(rec.knownIdentity, false);
        // TLS 1.3 says which: a bad binder (the message a person reads names the identity).
        if (name === 'wrong key') assert.match(String(rec.message), /^psk handshake failed: wrong key for identity "Client1" \(the client's key is not the one combined from the shares/);
        if (name === 'unknown identity') assert.match(String(rec.message), /^psk handshake failed: unknown identity "Mallory"/);
        const clients = await execa('redis-cli', ['-p', String(redis.port), 'CLIENT', 'LIST']);
        assert.equal(clients.stdout.trim().split('\n').length, 1, 'only redis-cli itself is connected to redis');
      });
    }
  });

  test('an unknown identity fails exactly like a wrong key (the client cannot tell which identities exist)', async (t) => {
    const redis = await startRedis(t);
    if (!redis) return;
    const proxy = await startProxy(t, serverOptions(redis.port));
    const failure = async (o: Parameters<typeof pskConnect>[1]) => {
      const err = await pskConnect(proxy.address.port, o).then(() => undefined, (e: NodeJS.ErrnoException) => e);
      assert.ok(err, 'the handshake should fail');
      return err.code;
    };
    assert.equal(await failure({ identity: 'Mallory' }), await failure({ key: Buffer.alloc(32, 1) }));
  });
});

describe('server mode with stunnel as the PSK client', () => {
  async function throughStunnel(t: TestContext, extra: Record<string, string>, tls12: boolean, expect: string): Promise<void> {
    if (!needs(t, 'redis-cli', INSTALL.redis)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const { log, lines } = memoryLog('debug');
    const proxy = await startProxy(t, serverOptions(redis.port, { log, tls: { tls12 } }));
    const stunnel = await startStunnel(t, { client: true, connect: proxy.address.port, extra });
    if (!stunnel) return;
    const cli = (...args: string[]) => execa('redis-cli', ['-h', '127.0.0.1', '-p', String(stunnel.port), ...args]);
    assert.equal((await cli('PING')).stdout, 'PONG');
    assert.equal((await cli('SET', 'via-stunnel', 'yes')).stdout, 'OK');
    assert.equal((await cli('GET', 'via-stunnel')).stdout, 'yes');
    assert.equal(proxy.stats().established, 3);
    assert.equal(proxy.stats().handshakeFailures, 0);
    assert.deepEqual(negotiated(lines), [expect, expect, expect]);
  }

  test('TLS 1.3 (ciphersuites TLS_AES_128_GCM_SHA256): redis-cli → stunnel → tee-init → redis', (t) =>
    throughStunnel(t, { sslVersionMin: 'TLSv1.3', ciphersuites: 'TLS_AES_128_GCM_SHA256' }, false, 'TLSv1.3 TLS_AES_128_GCM_SHA256'));

  test('TLS 1.3 (TLS_CHACHA20_POLY1305_SHA256)', (t) =>
    throughStunnel(t, { sslVersionMin: 'TLSv1.3', ciphersuites: 'TLS_CHACHA20_POLY1305_SHA256' }, false, 'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256'));

  test('TLS 1.2 (ciphers PSK) when enabled', (t) => throughStunnel(t, { sslVersionMax: 'TLSv1.2', ciphers: 'PSK' }, true, 'TLSv1.2 ECDHE-PSK-CHACHA20-POLY1305'));

  test('stunnel with the wrong key is refused', async (t) => {
    if (!needs(t, 'redis-cli', INSTALL.redis)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const proxy = await startProxy(t, serverOptions(redis.port));
    const stunnel = await startStunnel(t, { client: true, connect: proxy.address.port, keyHex: WRONG_KEY_HEX, extra: { ciphersuites: 'TLS_AES_128_GCM_SHA256' } });
    if (!stunnel) return;
    const r = await execa('redis-cli', ['-h', '127.0.0.1', '-p', String(stunnel.port), 'PING'], { reject: false });
    assert.notEqual(r.stdout, 'PONG');
    assert.equal(proxy.stats().handshakeFailures, 1);
    assert.equal(proxy.stats().established, 0);
  });
});

test('several identities, each with its own key', async (t) => {
  const redis = await startRedis(t);
  if (!redis) return;
  const other = Buffer.alloc(32, 9);
  other[0] = 1;
  const proxy = await startProxy(t, serverOptions(redis.port, { identities: new Map([[IDENTITY, KEY], ['Client2', other]]) }));
  const a = await pskConnect(proxy.address.port);
  const b = await pskConnect(proxy.address.port, { identity: 'Client2', key: other });
  const crossed = await pskConnect(proxy.address.port, { identity: 'Client2', key: KEY }).then(() => 'connected', () => 'refused');
  assert.equal(crossed, 'refused');
  a.destroy();
  b.destroy();
});
