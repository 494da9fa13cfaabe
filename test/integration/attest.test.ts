// Attested TLS through the whole product: two inits on the emulated world. The server init runs
// redis behind a strict tls listener with `attest:` (in worker threads, the default: each token
// is asked of the init's thread); the client init's tls listener in client
// mode verifies it (`verify.attestation`, the fake world's JWKS) before forwarding a byte; the
// redis-cli of the client side gets PONG. A client init that requires another image digest is
// refused in one line; `tee-init verify` prints the claims of the server init.
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ATTESTATION_JWKS_PATH } from '../fakes/gcp.ts';
import { boot, type Boot } from '../helpers/boot.ts';
import { bundle, node } from '../helpers/init.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, type Pki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';

const AUDIENCE = 'https://redis.example/attested';

describe('attested TLS between two inits', () => {
  let b: Boot;
  let pki: Pki;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tee-init-attest-int-'));
    pki = createPki(dir, { serverSans: ['DNS:localhost', 'IP:127.0.0.1'] });
    b = await boot({ pem: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) } });
  });
  after(async () => {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('redis-cli on the client side reaches the attested server side; a wrong digest is refused; tee-init verify prints the claims', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'redis-cli', 'apt-get install redis-tools')) return;
    const [redisPort, serverPort] = [await freePort(), await freePort()];
    const jwks = `${b.world.gcp.url}${ATTESTATION_JWKS_PATH}`;
    const server = b.start(b.config({
      run: { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] },
      listeners: {
        db: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${serverPort}`, connect: `127.0.0.1:${redisPort}`, tls: { cert: 'cert', key: 'key', ca: 'ca' }, attest: { audience: AUDIENCE } },
      },
    }));
    t.after(async () => {
      server.proc.kill('SIGTERM');
      await server.proc;
    });
    await server.log.waitFor('listener serving from worker threads', 30_000);

    // The client side's own certificate: the client pair of the same PKI, from its own secrets.
    const clientSide = (require: Record<string, string>) => b.config({
      output: { dir: join(b.dir, `out-client-${Math.random().toString(36).slice(2)}`) },
      secrets: {
        ca: { source: 'file', path: pki.ca.cert, file: 'ca.pem' },
        cert: { source: 'file', path: pki.client.cert, file: 'client.crt' },
        key: { source: 'file', path: pki.client.key, file: 'client.key' },
      },
      credentials: {},
      run: { command: ['sleep', '3600'] },
      endpoints: { ...b.config().endpoints as object, jwks },
      listeners: {
        db: { type: 'tls', mode: 'client', listen: `127.0.0.1:${localPort}`, connect: `127.0.0.1:${serverPort}`,
          tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'localhost' },
          verify: { attestation: { audience: AUDIENCE, require, jwks } } },
      },
    });
    let localPort = await freePort();
    const good = b.start(clientSide({ 'submods.container.image_digest': b.world.imageDigest }));
    t.after(async () => {
      good.proc.kill('SIGTERM');
      await good.proc;
    });
    await good.log.waitFor('listener serving from worker threads', 30_000);
    const pong = await execa('redis-cli', ['-p', String(localPort), 'PING'], { reject: false, timeout: 15_000 });
    assert.equal(pong.stdout.trim(), 'PONG', `${pong.stderr}\n${good.log.text}`);

    localPort = await freePort();
    const bad = b.start(clientSide({ 'submods.container.image_digest': `sha256:${'00'.repeat(32)}` }));
    t.after(async () => {
      bad.proc.kill('SIGTERM');
      await bad.proc;
    });
    await bad.log.waitFor('listener serving from worker threads', 30_000);
    const refused = await execa('redis-cli', ['-p', String(localPort), 'PING'], { reject: false, timeout: 15_000 });
    assert.notEqual(refused.stdout.trim(), 'PONG');
    const line = await bad.log.waitFor('handshake with the remote peer failed', 15_000);
    assert.match(String(line.reason), /attestation refused: attestation policy not met: claim submods\.container\.image_digest is "sha256:/);

    const v = await execa(node, [bundle, 'verify', '--audience', AUDIENCE, '--jwks', jwks, '--ca', pki.ca.cert, '--servername', 'localhost',
      '--cert', pki.client.cert, '--key', pki.client.key, '--require', `swname=CONFIDENTIAL_SPACE`, `127.0.0.1:${serverPort}`], { reject: false });
    assert.equal(v.exitCode, 0, v.stderr);
    assert.equal((JSON.parse(v.stdout) as { imageDigest: string }).imageDigest, b.world.imageDigest);
    assert.equal(server.log.text.includes('eyJ'), false, 'no token in the server init\'s log');
  });
});
