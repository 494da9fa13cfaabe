// Client mode (plain TCP in, TLS-PSK out) against independent servers: openssl s_server and
// stunnel (with redis behind it), then tee-init on both ends (issue 5, "Client mode").
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { combineShares } from '../../../src/proxy/types/psk/index.ts';
import { Lines } from '../../helpers/lines.ts';
import { needs } from '../../helpers/tools.ts';
import { ALICE, BOB, clientOptions, INSTALL, memoryLog, serverOptions, sServer, startProxy, startRedis, startStunnel, WRONG_KEY_HEX } from './peers.ts';

describe('client mode with openssl s_server -nocert -psk', () => {
  for (const [name, extra, tls12] of [
    ['TLS 1.3, TLS_AES_128_GCM_SHA256', ['-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256'], false],
    ['TLS 1.3, TLS_CHACHA20_POLY1305_SHA256', ['-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256'], false],
    ['TLS 1.2 PSK-AES256-GCM-SHA384 (enabled)', ['-tls1_2', '-cipher', 'PSK-AES256-GCM-SHA384'], true],
  ] as const) {
    test(`${name}: text flows both ways`, async (t) => {
      const server = await sServer(t, { extra: [...extra] });
      if (!server) return;
      const { log, lines } = memoryLog('debug');
      const proxy = await startProxy(t, clientOptions(server.port, { log, tls: { tls12 } }));
      const c = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
      const fromServer = new Lines(c);
      c.write('hello from tee-init\n');
      await server.out.until(/^hello from tee-init$/);
      server.write('hello from openssl\n');
      assert.equal(await fromServer.next(), 'hello from openssl');
      c.destroy();
      const open = lines.map((l) => JSON.parse(l) as Record<string, string>).find((r) => r.message === 'psk connection open')!;
      assert.equal(open.protocol, tls12 ? 'TLSv1.2' : 'TLSv1.3');
    });
  }

  test('TLS 1.2-only server is refused unless 1.2 is enabled', async (t) => {
    const server = await sServer(t, { extra: ['-tls1_2', '-cipher', 'PSK-AES256-GCM-SHA384'] });
    if (!server) return;
    const proxy = await startProxy(t, clientOptions(server.port));
    const c = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
    await once(c, 'close');
    assert.equal(proxy.stats().handshakeFailures, 1);
  });

  test('wrong key: the handshake fails and the local connection is closed', async (t) => {
    const server = await sServer(t, { keyHex: WRONG_KEY_HEX });
    if (!server) return;
    const proxy = await startProxy(t, clientOptions(server.port));
    const c = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
    await once(c, 'close');
    assert.equal(proxy.stats().handshakeFailures, 1);
    assert.equal(proxy.stats().established, 0);
  });
});

describe('client mode with a stunnel PSK server in front of redis', () => {
  async function viaStunnel(t: TestContext, extra: Record<string, string>, tls12: boolean): Promise<void> {
    if (!needs(t, 'redis-cli', INSTALL.redis)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const stunnel = await startStunnel(t, { client: false, connect: redis.port, extra });
    if (!stunnel) return;
    const proxy = await startProxy(t, clientOptions(stunnel.port, { tls: { tls12 } }));
    const cli = (...args: string[]) => execa('redis-cli', ['-h', '127.0.0.1', '-p', String(proxy.address.port), ...args]);
    assert.equal((await cli('PING')).stdout, 'PONG');
    assert.equal((await cli('SET', 'via-client-mode', 'yes')).stdout, 'OK');
    assert.equal((await cli('GET', 'via-client-mode')).stdout, 'yes');
    assert.equal(proxy.stats().established, 3);
  }

  test('TLS 1.3: redis-cli → tee-init (client) → stunnel → redis', (t) =>
    viaStunnel(t, { sslVersionMin: 'TLSv1.3', ciphersuites: 'TLS_AES_128_GCM_SHA256' }, false));

  test('TLS 1.2 (ciphers PSK, sslVersionMax TLSv1.2) with 1.2 enabled', (t) =>
    viaStunnel(t, { sslVersionMax: 'TLSv1.2', ciphers: 'PSK' }, true));
});

describe('tee-init on both ends', () => {
  test('redis-cli → client mode → TLS-PSK (hkdf-sha256 key) → server mode → redis', async (t) => {
    if (!needs(t, 'redis-cli', INSTALL.redis)) return;
    const redis = await startRedis(t);
    if (!redis) return;
    const shares = [{ name: 'share_a', value: `${ALICE}\n` }, { name: 'share_b', value: BOB }];
    const spec = { method: 'hkdf-sha256', salt: 'tee-init-test', info: 'psk TEE-A' } as const;
    // Each side combines the shares it was given, as two TEEs would.
    const serverKey = combineShares(shares, spec, 'TEE-A');
    const clientKey = combineShares(shares, spec, 'TEE-A');
    const server = await startProxy(t, serverOptions(redis.port, { identities: new Map([['TEE-A', serverKey]]) }));
    const client = await startProxy(t, clientOptions(server.address.port, { identity: 'TEE-A', key: clientKey }));
    const cli = (...args: string[]) => execa('redis-cli', ['-h', '127.0.0.1', '-p', String(client.address.port), ...args]);
    assert.equal((await cli('PING')).stdout, 'PONG');
    assert.equal((await cli('SET', 'both-ends', 'ok')).stdout, 'OK');
    assert.equal((await cli('GET', 'both-ends')).stdout, 'ok');
    // redis-benchmark's small run exercises many short connections through both proxies.
    const bench = await execa('redis-benchmark', ['-h', '127.0.0.1', '-p', String(client.address.port), '-t', 'ping', '-n', '2000', '-c', '10', '-q']);
    assert.match(bench.stdout, /PING_INLINE: [\d.]+ requests per second/);
    assert.equal(server.stats().handshakeFailures, 0);
    assert.equal(client.stats().handshakeFailures, 0);
  });

  test('a different salt on one side makes a different key: refused', async (t) => {
    const redis = await startRedis(t);
    if (!redis) return;
    const shares = [{ name: 'share_a', value: ALICE }, { name: 'share_b', value: BOB }];
    const server = await startProxy(t, serverOptions(redis.port, {
      identities: new Map([['TEE-A', combineShares(shares, { method: 'hkdf-sha256', salt: 's1', info: 'i' })]]),
    }));
    const client = await startProxy(t, clientOptions(server.address.port, {
      identity: 'TEE-A', key: combineShares(shares, { method: 'hkdf-sha256', salt: 's2', info: 'i' }),
    }));
    const c = tcpConnect({ host: '127.0.0.1', port: client.address.port });
    await once(c, 'close');
    assert.equal(server.stats().handshakeFailures, 1);
  });
});
