// Issue 5 through the whole product: shares from two collaborators (fake Secret Manager), keys
// combined by the init, the TLS-PSK listener beside a real redis-server child, independent
// peers (openssl), and two inits talking to each other (client mode -> server mode).
import assert from 'node:assert/strict';
import { createHash, hkdfSync } from 'node:crypto';
import { execa } from 'execa';
import { after, before, describe, test } from 'node:test';
import { boot, SHARE_A, SHARE_B, type Boot } from '../helpers/boot.ts';
import { freePort } from '../helpers/net.ts';
import { pingOverPsk } from '../helpers/psk.ts';
import { needs } from '../helpers/tools.ts';

const SHA256_CONCAT_KEY = createHash('sha256').update(SHARE_A + SHARE_B).digest('hex');
const HKDF_KEY = Buffer.from(hkdfSync('sha256', Buffer.from(SHARE_A + SHARE_B, 'hex'), 'tee-init-test', 'redis', 32)).toString('hex');

describe('TLS-PSK through the config', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  function pskConfig(listen: number, redisPort: number, identity: Record<string, unknown>, level = 'debug') {
    return b.config({
      log: { level },
      run: { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] },
      psk: { mode: 'server', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${redisPort}`, identities: { Client1: { shares: ['share_a', 'share_b'], ...identity } } },
    });
  }

  for (const [name, identity, key] of [
    ['sha256-concat (the reference demo)', { combine: 'sha256-concat' }, SHA256_CONCAT_KEY],
    ['hkdf-sha256', { combine: 'hkdf-sha256', salt: 'tee-init-test', info: 'redis' }, HKDF_KEY],
  ] as const) {
    test(`server mode, ${name}: openssl with the combined key reaches redis; a wrong key does not`, async (t) => {
      if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl')) return;
      const [listen, redisPort] = [await freePort(), await freePort()];
      const { proc, log } = b.start(pskConfig(listen, redisPort, identity));
      await log.waitFor('psk proxy listening', 15_000);
      assert.equal(await pingOverPsk(listen, key), true);
      assert.equal(await pingOverPsk(listen, 'ab'.repeat(32)), false);
      proc.kill('SIGTERM');
      const result = await proc;
      assert.equal(result.exitCode, 0, log.text); // redis exits 0 on SIGTERM: the child decides
      // The combined key and the shares never appear in the output.
      for (const needle of [key, SHARE_A, SHARE_B]) assert.equal(log.text.includes(needle), false);
      assert.deepEqual(b.leftovers(), []);
    });
  }

  test('a share that is not 64 hex digits: 65 naming it, no child', async () => {
    b.world.addSecret('projects/bob-proj/secrets/bad_share', 'not-hex-at-all');
    const config = pskConfig(await freePort(), await freePort(), { combine: 'sha256-concat' });
    (config.secrets as Record<string, Record<string, unknown>>).share_b!.ref = 'projects/bob-proj/secrets/bad_share/versions/1';
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 65, log.text);
    assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /share_b/);
    assert.equal(log.find('child started'), undefined);
  });

  test('the listener cannot bind: the child is stopped and the init reports it (not the child status)', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server')) return;
    const redisPort = await freePort();
    // Taken once the plan found it free (taken before, the plan refuses it: plan.test.ts).
    const taken = await freePort();
    const busy = (await import('node:net')).createServer();
    try {
      const { proc, log } = b.start(pskConfig(taken, redisPort, { combine: 'sha256-concat' }), ['--grace-period', '2s']);
      await log.waitFor('config loaded', 30_000);
      await new Promise<void>((r) => busy.listen(taken, '127.0.0.1', r));
      const result = await proc;
      assert.notEqual(result.exitCode, 0, log.text);
      assert.ok(log.find('child started'));
      assert.ok(log.find('stopping the child'));
      assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, new RegExp(String(taken)));
      assert.deepEqual(b.leftovers(), []);
    } finally {
      busy.close();
    }
  });

  test('client mode: a second init carries plaintext redis traffic to the first over TLS-PSK', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'redis-cli', 'apt-get install redis-tools')) return;
    const [listen, redisPort, local] = [await freePort(), await freePort(), await freePort()];
    const server = b.start(pskConfig(listen, redisPort, { combine: 'sha256-concat' }));
    await server.log.waitFor('psk proxy listening', 15_000);
    const clientConfig = b.config({
      output: { dir: `${b.outDir}-client` },
      run: { command: ['sleep', '60'] },
      psk: { mode: 'client', listen: `127.0.0.1:${local}`, connect: `127.0.0.1:${listen}`, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } },
    });
    const client = b.start(clientConfig);
    try {
      await client.log.waitFor('psk proxy listening', 15_000);
      const set = await execa('redis-cli', ['-p', String(local), 'SET', 'greeting', 'through two inits'], { reject: false });
      assert.equal(set.stdout.trim(), 'OK', set.stderr);
      const get = await execa('redis-cli', ['-p', String(local), 'GET', 'greeting'], { reject: false });
      assert.equal(get.stdout.trim(), 'through two inits');
    } finally {
      client.proc.kill('SIGTERM');
      server.proc.kill('SIGTERM');
      await Promise.all([client.proc, server.proc]);
    }
  });
});
