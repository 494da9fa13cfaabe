// The redis preset end to end: a throwaway PKI from the real openssl, the rendered command run by
// the real bundle as a plain init, the real redis-server and redis-cli.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { render } from '../../src/render/index.ts';
import { Lines } from '../helpers/lines.ts';
import { createPki, type KeyPair } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';
import { freePort, listeningPorts } from './net.ts';

/** A non-loopback IPv4 address of this machine, to reach redis the way a remote client would. */
function externalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
}

test('redis preset: mTLS only, nothing persisted, clean SIGTERM (real redis under the real bundle)', async (t) => {
  if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'redis-cli', 'apt-get install redis-tools') || !needs(t, 'openssl', 'apt-get install openssl')) return;
  // Imported here: it needs dist/tee-init.js, which the skip above should not depend on.
  const { startInit } = await import('../helpers/init.ts');

  const dir = mkdtempSync(join(tmpdir(), 'tee-init-redis-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const external = externalAddress();
  const pki = createPki(join(dir, 'pki'), { serverSans: ['DNS:localhost', 'IP:127.0.0.1', ...(external ? [`IP:${external}`] : [])] });
  const stranger = createPki(join(dir, 'other-ca'), { caName: 'some other CA', clientName: 'stranger' });
  // Redis's working directory, named so that a shell or a config-file splice would break it.
  const outputDir = join(dir, `out "dir" it's #1`);
  mkdirSync(outputDir, { mode: 0o700 });

  const tlsPort = await freePort();
  const rendered = render({
    run: { preset: 'redis', with: { tlsPort, cert: 'server-cert', key: 'server-key' } },
    secrets: { ca: { path: pki.ca.cert }, 'server-cert': { path: pki.server.cert }, 'server-key': { path: pki.server.key } },
    outputDir,
  });
  assert.deepEqual(rendered.env, {});

  const { proc, log } = startInit(['--', ...rendered.argv], { stdout: 'pipe', env: rendered.env });
  const out = new Lines(proc.stdout!);
  t.after(() => proc.kill('SIGKILL'));
  await out.until(/Ready to accept connections/);
  const redisPid = (await log.waitFor('child started')).pid as number;
  t.after(() => {
    try {
      process.kill(redisPid, 'SIGKILL'); // only if a failure left it behind
    } catch {}
  });

  // client null: plaintext, no TLS at all.
  const cli = (args: readonly string[], client: KeyPair | null = pki.client, host = '127.0.0.1') =>
    execa('redis-cli', ['-h', host, '-p', String(tlsPort), ...(client ? ['--tls', '--cacert', pki.ca.cert, '--cert', client.cert, '--key', client.key] : []), ...args], {
      reject: false,
      timeout: 10_000,
    });

  await t.test('a client with a certificate from the CA gets PONG', async () => {
    const r = await cli(['ping']);
    assert.equal(r.stdout, 'PONG', r.stderr);
  });

  await t.test('a remote (non-loopback) client gets PONG too: the certificate is its authentication', async (t) => {
    if (!external) return t.skip('no non-loopback IPv4 address on this machine');
    const r = await cli(['ping'], pki.client, external);
    assert.equal(r.stdout, 'PONG', `${r.stdout} ${r.stderr}`);
  });

  await t.test('a TLS client without a certificate is refused', async () => {
    const r = await execa('redis-cli', ['-h', '127.0.0.1', '-p', String(tlsPort), '--tls', '--cacert', pki.ca.cert, 'ping'], { reject: false, timeout: 10_000 });
    assert.notEqual(r.stdout, 'PONG');
    assert.equal(r.exitCode, 1, `${r.stdout} ${r.stderr}`);
    await out.until(/peer did not return a certificate/);
  });

  await t.test('a client certificate from another CA is refused', async () => {
    const r = await execa('redis-cli', ['-h', '127.0.0.1', '-p', String(tlsPort), '--tls', '--cacert', pki.ca.cert, '--cert', stranger.client.cert, '--key', stranger.client.key, 'ping'], {
      reject: false,
      timeout: 10_000,
    });
    assert.notEqual(r.stdout, 'PONG');
    assert.equal(r.exitCode, 1, `${r.stdout} ${r.stderr}`);
    await out.until(/certificate verify failed|unknown ca/i);
  });

  await t.test('plaintext is refused, and no plaintext port is open', async () => {
    const r = await cli(['ping'], null);
    assert.notEqual(r.stdout, 'PONG');
    assert.equal(r.exitCode, 1, `${r.stdout} ${r.stderr}`);
    assert.deepEqual(listeningPorts(redisPid), [tlsPort], 'redis listens on the TLS port only');
  });

  await t.test('the running server has the hardened settings', async () => {
    const r = await cli(['config', 'get', '*']);
    const lines = r.stdout.split('\n');
    const conf = new Map<string, string>();
    for (let i = 0; i + 1 < lines.length; i += 2) conf.set(lines[i]!, lines[i + 1]!);
    assert.equal(conf.get('port'), '0');
    assert.equal(conf.get('tls-port'), String(tlsPort));
    assert.equal(conf.get('tls-auth-clients'), 'yes');
    assert.equal(conf.get('tls-protocols'), 'TLSv1.2 TLSv1.3');
    assert.equal(conf.get('save'), '');
    assert.equal(conf.get('appendonly'), 'no');
    assert.equal(conf.get('protected-mode'), 'no');
    assert.equal(conf.get('dir'), outputDir, 'the odd directory name arrived as one value');
    assert.equal(conf.get('tls-cert-file'), pki.server.cert);
  });

  await t.test('the admin socket: 0700, owned by redis\'s user, no certificate needed; the preset\'s reload and ready name it', async () => {
    const socket = join(outputDir, 'redis.sock');
    const st = statSync(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(st.uid, process.getuid!(), 'created by redis, which runs as the init\'s user here');
    assert.deepEqual(rendered.ready, { unix: socket });
    const r = await execa('redis-cli', ['-s', socket, 'ping'], { reject: false, timeout: 10_000 });
    assert.equal(r.stdout, 'PONG', r.stderr);
    assert.ok(typeof rendered.reload === 'object' && 'exec' in rendered.reload);
    const [cmd, ...args] = rendered.reload.exec;
    const reload = await execa(cmd!, args, { reject: false, timeout: rendered.reload.timeoutMs });
    assert.equal(reload.exitCode, 0, `${reload.stdout} ${reload.stderr}`);
    assert.equal(reload.stdout, 'OK');
  });

  await t.test('SIGTERM to tee-init: redis exits 0, tee-init exits 0, nothing written to disk', async () => {
    await cli(['set', 'k', 'v']);
    proc.kill('SIGTERM');
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    const exited = await log.waitFor('child exited');
    assert.equal(exited.code, 0);
    assert.equal(exited.signal, null);
    assert.deepEqual(readdirSync(outputDir), [], 'no RDB/AOF file, and redis removed its socket');
  });
});
