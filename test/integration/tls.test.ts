// Issue 11 through the whole product: the bundle with a config, certificates from the fake
// Secret Manager, a real redis-server child behind a tls listener in strict and permissive
// mode, and independent clients (openssl s_client with and without a certificate, redis-cli).
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, type Pki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';

/** RESP PING through openssl s_client (with the client certificate unless `bare`): true on +PONG. */
async function pingOverMtls(pki: Pki, port: number, bare = false): Promise<boolean> {
  const r = await execa('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki.ca.cert, '-verify_return_error', '-quiet',
    ...(bare ? [] : ['-cert', pki.client.cert, '-key', pki.client.key])], { input: 'PING\r\nQUIT\r\n', reject: false, timeout: 15_000 });
  return r.stdout.includes('+PONG');
}

async function redisCli(port: number): Promise<string> {
  const r = await execa('redis-cli', ['-p', String(port), 'PING'], { reject: false, timeout: 15_000 });
  return `${r.stdout}${r.stderr}`.trim();
}

describe('tls listeners through the config', () => {
  let b: Boot;
  let pki: Pki;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tee-init-tls-int-'));
    pki = createPki(dir);
    b = await boot({ pem: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) } });
  });
  after(async () => {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function tlsConfig(mode: string, listen: number, redisPort: number) {
    return b.config({
      run: { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] },
      listeners: {
        mesh: { type: 'tls', mode, listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${redisPort}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } },
      },
    });
  }

  test('strict: a client with a certificate reaches redis; without one, or in plaintext, it does not', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl') || !needs(t, 'redis-cli', 'apt-get install redis-tools')) return;
    const [listen, redisPort] = [await freePort(), await freePort()];
    const { proc, log } = b.start(tlsConfig('strict', listen, redisPort));
    await log.waitFor('tls proxy listening', 15_000);
    assert.equal(await pingOverMtls(pki, listen), true);
    assert.equal(await pingOverMtls(pki, listen, true), false);
    assert.doesNotMatch(await redisCli(listen), /PONG/);
    await log.waitFor('tls client refused');
    proc.kill('SIGTERM');
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.ok(log.find('tls proxy closed'));
    assert.equal(log.text.includes(readFileSync(pki.server.key, 'utf8').split('\n')[1]!), false, 'no key material in the log');
    assert.deepEqual(b.leftovers(), []);
  });

  test('permissive: plaintext redis-cli and mutual TLS on the same port', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl') || !needs(t, 'redis-cli', 'apt-get install redis-tools')) return;
    const [listen, redisPort] = [await freePort(), await freePort()];
    const { proc, log } = b.start(tlsConfig('permissive', listen, redisPort));
    await log.waitFor('tls proxy listening', 15_000);
    assert.equal(await redisCli(listen), 'PONG');
    assert.equal(await pingOverMtls(pki, listen), true);
    await log.waitFor('plaintext client on a permissive port');
    proc.kill('SIGTERM');
    assert.equal((await proc).exitCode, 0, log.text);
    assert.deepEqual(b.leftovers(), []);
  });

  test('a listener naming a secret that does not exist: check and boot fail with 78, no child', async () => {
    const config = tlsConfig('strict', await freePort(), await freePort());
    (config.listeners as { mesh: { tls: Record<string, string> } }).mesh.tls.ca = 'nope';
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 78, log.text);
    assert.match(log.text, /listeners\.mesh\.tls\.ca: found \\"nope\\", but no secret has that name/);
    assert.equal(log.find('child started'), undefined);
  });
});

describe('tls secrets that do not fit', () => {
  test('a key that is not the certificate\'s, held in memory only: 65 naming it, no child, nothing left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-tls-int-'));
    const pki = createPki(dir);
    const other = createPki(join(dir, 'other'));
    const b = await boot({ pem: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(other.server.key) } });
    try {
      const config = b.config({
        listeners: { mesh: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${await freePort()}`, connect: `127.0.0.1:${await freePort()}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } } },
      });
      // Memory only: the PEM check of materialized files does not see them; the listener's does.
      const secrets = config.secrets as Record<string, Record<string, unknown>>;
      for (const n of ['ca', 'cert', 'key']) {
        delete secrets[n]!.file;
        delete secrets[n]!.mode;
      }
      const { proc, log } = b.start(config);
      const result = await proc;
      assert.equal(result.exitCode, 65, log.text);
      assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /secret key: private key matches no certificate among the secrets/);
      assert.equal(log.find('child started'), undefined);
      assert.deepEqual(b.leftovers(), []);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
