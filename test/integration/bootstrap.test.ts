// Issue 3 end to end: the real bundle against the emulated Confidential Space world (loopback
// fakes of STS, IAM credentials, Secret Manager and the teeserver, real client libraries).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { node, root, startInit } from '../helpers/init.ts';
import { createPki } from '../helpers/pki.ts';

// The child reports what it was given: files (mode, owner, content hash), argv and env.
const REPORT = `
const fs = require('node:fs'), crypto = require('node:crypto');
const files = {};
// Names starting with ".." are the generations behind the visible symlinks (..data): skipped, as a
// Kubernetes secret volume's reader does; statSync/readFileSync follow OUT/NAME -> ..data/NAME.
for (const f of fs.readdirSync(process.env.OUT).filter((f) => !f.startsWith('..'))) {
  const p = process.env.OUT + '/' + f, st = fs.statSync(p);
  files[f] = { mode: (st.mode & 0o7777).toString(8), uid: st.uid, sha256: crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') };
}
const dir = fs.statSync(process.env.OUT), gen = fs.statSync(process.env.OUT + '/..data');
const links = Object.fromEntries(Object.keys(files).map((f) => [f, fs.readlinkSync(process.env.OUT + '/' + f)]));
console.log(JSON.stringify({ files, links, data: fs.readlinkSync(process.env.OUT + '/..data'), genMode: (gen.mode & 0o7777).toString(8), dirMode: (dir.mode & 0o777).toString(8), argv: process.argv.slice(1), env: process.env, uid: process.getuid() }));`;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('a full boot', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  test('two collaborators, one exchange each, files on tmpfs with their modes, placeholders filled, all wiped', async () => {
    const config = b.config({
      run: { command: [node, '-e', REPORT, '--', '--cert={{secrets.cert.path}}', '{{output.dir}}'], env: { OUT: '{{output.dir}}', KEY_FILE: '{{secrets.key.path}}' } },
    });
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    const seen = JSON.parse(result.stdout as string);
    assert.deepEqual(Object.keys(seen.files).sort(), ['ca.pem', 'server.crt', 'server.key']);
    assert.equal(seen.files['server.key'].mode, '400');
    assert.equal(seen.files['server.crt'].mode, '440');
    assert.equal(seen.files['ca.pem'].sha256, sha256(b.values.ca!));
    assert.equal(seen.files['server.crt'].sha256, sha256(b.values.cert!), 'version 2 of the cert');
    assert.equal(seen.files['server.key'].sha256, sha256(b.values.key!));
    assert.equal(seen.dirMode, '700');
    // The Kubernetes layout: OUT/NAME -> ..data/NAME, ..data -> ..<UTC time>, a 0700 generation.
    assert.deepEqual(seen.links, { 'ca.pem': '..data/ca.pem', 'server.crt': '..data/server.crt', 'server.key': '..data/server.key' });
    assert.match(seen.data, /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}$/);
    assert.equal(seen.genMode, '700');
    assert.deepEqual(seen.argv, [`--cert=${b.outDir}/server.crt`, b.outDir]);
    assert.equal(seen.env.KEY_FILE, `${b.outDir}/server.key`);
    assert.equal(Object.keys(seen.env).some((k: string) => k.startsWith('TEE_INIT_')), false);

    // One STS exchange per collaborator, each with its own audience; alice through her SA.
    const sts = b.world.gcp.requestsOf('sts');
    assert.deepEqual(sts.map((r) => r.audience).sort(), [b.world.collaborators.alice.audience, b.world.collaborators.bob.audience].sort());
    assert.deepEqual(b.world.gcp.requestsOf('iam').map((r) => r.serviceAccount), [b.world.collaborators.alice.serviceAccount]);
    assert.equal(b.world.gcp.requestsOf('sm').length, 5);

    // Logged: the claims summary and where each secret came from; never the bytes.
    assert.equal(log.find('attestation token read')!.imageDigest, b.world.imageDigest);
    assert.ok(log.find('secrets fetched'));
    assert.deepEqual(b.leftovers(), []);
  });
});

describe('failures: one line naming the culprit, a documented status, no child, nothing on disk', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  async function fails(config: Record<string, unknown>, status: number, pattern: RegExp, env: Record<string, string> = {}) {
    b.world.gcp.requests.length = 0;
    const { proc, log } = b.start(config, [], env);
    const result = await proc;
    assert.equal(result.exitCode, status, log.text);
    const errors = log.records.filter((r) => r.severity === 'ERROR');
    assert.equal(errors.length, 1, log.text);
    assert.match(errors[0]!.message, pattern);
    assert.equal(existsSync(b.marker), false, 'no child was started');
    assert.deepEqual(b.leftovers(), [], 'nothing left on disk');
    return { log, errors };
  }
  const restore = async () => {
    b.world.gcp.clearFaults();
    await b.world.writeToken();
  };

  test('token file missing: 66 naming it, after waiting attestation.waitFor', async () => {
    const config = b.config();
    (config.attestation as Record<string, unknown>).tokenFile = join(b.dir, 'no-token');
    (config.attestation as Record<string, unknown>).waitFor = '150ms';
    const { log } = await fails(config, 66, /attestation token .*no-token does not exist/);
    assert.ok(log.find('waiting for the launcher'));
  });

  test('token file that is not a JWT: 66', async () => {
    const bad = join(b.world.dir, 'not-a-jwt');
    writeFileSync(bad, 'hello');
    const config = b.config();
    (config.attestation as Record<string, unknown>).tokenFile = bad;
    await fails(config, 66, /does not hold a JWT/);
  });

  test('token file that is a FIFO or far too big: 66 at once, one line each (never a hang)', async () => {
    const fifo = join(b.world.dir, 'token-fifo');
    execFileSync('mkfifo', [fifo]);
    const big = join(b.world.dir, 'token-big');
    writeFileSync(big, 'x'.repeat(70_000));
    for (const [path, pattern] of [[fifo, /token-fifo is not a regular file/], [big, /token-big is over 64 KiB: not a token/]] as const) {
      const config = b.config();
      (config.attestation as Record<string, unknown>).tokenFile = path;
      await fails(config, 66, pattern);
    }
  });

  test('expired token that the launcher does not refresh, and no teeserver to ask instead: 66', async () => {
    await b.world.writeToken({}, { expiresInSeconds: -60 });
    const config = b.config();
    (config.attestation as Record<string, unknown>).waitFor = '150ms';
    (config.endpoints as Record<string, unknown>).teeserver = join(b.dir, 'no-teeserver.sock');
    await fails(config, 66, /expired at .*: the launcher did not refresh it, and no default token came from the teeserver instead \(teeserver socket .*no-teeserver\.sock does not exist/);
    await restore();
  });

  test('attestation.require not met: 77 naming the claim, before any request', async () => {
    await b.world.writeToken({ dbgstat: 'enabled' });
    const config = b.config();
    (config.attestation as Record<string, unknown>).require = { dbgstat: 'disabled-since-boot' };
    await fails(config, 77, /claim dbgstat is "enabled", attestation\.require wants "disabled-since-boot"/);
    assert.deepEqual(b.world.gcp.requests, [], 'nothing was asked of anyone');
    await restore();
  });

  test("a collaborator's attribute condition refuses the token: 77 naming the identity", async () => {
    await b.world.writeToken({ submods: { container: { image_digest: 'sha256:other' } } });
    await fails(b.config(), 77, /credentials (alice|bob) \(projects\/\d+\/locations\/global\/workloadIdentityPools\/(alice|bob)-pool\/providers\/attestation.*\): refused \(invalid_grant\)/);
    await restore();
  });

  test('service account impersonation denied: 77 naming the service account', async () => {
    const config = b.config();
    (config.credentials as Record<string, Record<string, unknown>>).alice!.serviceAccount = 'other@alice-proj.iam.gserviceaccount.com';
    await fails(config, 77, /alice .*as other@alice-proj\.iam\.gserviceaccount\.com.*permission denied/);
  });

  test('Secret Manager denies a secret: 77 naming the secret and the identity', async () => {
    const config = b.config();
    (config.secrets as Record<string, Record<string, unknown>>).ca!.credentials = 'alice';
    await fails(config, 77, /secret ca \(projects\/bob-proj\/secrets\/ca\/versions\/latest, read as alice .*\): permission denied/);
  });

  test('a secret that does not exist: 78 naming the ref', async () => {
    const config = b.config();
    (config.secrets as Record<string, Record<string, unknown>>).key!.ref = 'projects/alice-proj/secrets/no-such/versions/1';
    await fails(config, 78, /secret key \(projects\/alice-proj\/secrets\/no-such\/versions\/1, .*\): not found/);
  });

  test('a disabled version: 78', async () => {
    b.world.addSecret('projects/alice-proj/secrets/rotated', [{ data: 'v1' }, { data: 'v2', state: 'DISABLED' }]);
    const config = b.config();
    (config.secrets as Record<string, Record<string, unknown>>).key!.ref = 'projects/alice-proj/secrets/rotated/versions/2';
    await fails(config, 78, /secret key .*rotated\/versions\/2.*not usable \(disabled or destroyed\).*DISABLED/);
  });

  test('a corrupted payload (CRC32C mismatch): 65 naming the secret', async () => {
    b.world.gcp.fault('sm', { corruptCrc: true }, { secret: 'projects/alice-proj/secrets/server-key' });
    await fails(b.config(), 65, /secret key \(projects\/111\/secrets\/server-key\/versions\/1\): payload fails its CRC32C check/);
    await restore();
  });

  test('a payload over 64 KiB, or an empty one where a file is expected: 65', async () => {
    b.world.addSecret('projects/alice-proj/secrets/huge', Buffer.alloc(70 * 1024, 1));
    b.world.addSecret('projects/alice-proj/secrets/empty', Buffer.alloc(0));
    const config = b.config();
    (config.secrets as Record<string, Record<string, unknown>>).key!.ref = 'projects/alice-proj/secrets/huge/versions/1';
    await fails(config, 65, /secret key .* is 71680 bytes: more than a secret can hold/);
    (config.secrets as Record<string, Record<string, unknown>>).key!.ref = 'projects/alice-proj/secrets/empty/versions/1';
    await fails(config, 65, /secret key .* is empty, but secrets\.key\.file expects content/);
  });

  test('Secret Manager unavailable past fetch.deadline: 69 naming the secret', async () => {
    b.world.gcp.fault('sm', { status: 503 }, { secret: 'projects/bob-proj/secrets/ca' });
    const config = b.config();
    (config.fetch as Record<string, unknown>).deadline = '3s';
    const { log } = await fails(config, 69, /secret ca \(projects\/bob-proj\/secrets\/ca\/versions\/latest, .*\): still unavailable after the 3s fetch\.deadline \(\d+ attempts\): unavailable \(HTTP 503\)/);
    assert.ok(log.records.filter((r) => /retrying/.test(r.message)).length >= 2, 'retried with backoff');
    await restore();
  });

  test('STS hanging past fetch.deadline: 69 naming the identity and the URL', async () => {
    b.world.gcp.fault('sts', { hang: true });
    const config = b.config();
    Object.assign(config.fetch as Record<string, unknown>, { deadline: '700ms', attemptTimeout: '200ms' });
    await fails(config, 69, /credentials (alice|bob) \(.*; token from http:\/\/127\.0\.0\.1:\d+\/v1\/token.*\): still unavailable .*no answer within/);
    await restore();
  });

  test('Secret Manager hanging past fetch.deadline: 69 naming the secret, the identity and the URL', async () => {
    b.world.gcp.fault('sm', { hang: true }, { secret: 'projects/bob-proj/secrets/ca' });
    const config = b.config();
    Object.assign(config.fetch as Record<string, unknown>, { deadline: '3s', attemptTimeout: '500ms' });
    await fails(config, 69, /^secret ca \(projects\/bob-proj\/secrets\/ca\/versions\/latest, read as bob .* at http:\/\/127\.0\.0\.1:\d+\/v1\/projects\/bob-proj\/secrets\/ca\/versions\/latest:access\): still unavailable .*no answer within/);
    await restore();
  });

  test('Secret Manager not reachable (connection refused) past the deadline: 69', async () => {
    const config = b.config();
    (config.endpoints as Record<string, unknown>).secretmanager = 'http://127.0.0.1:1';
    // Long enough that the STS exchange before it cannot eat the whole deadline on a loaded
    // machine (a refused connection is retried quickly: the test takes about this long).
    (config.fetch as Record<string, unknown>).deadline = '5s';
    await fails(config, 69, /secret \w+ \(.*\): still unavailable .*(ECONNREFUSED|unavailable)/);
  });

  test('plain http to a non-loopback endpoint: 78 naming the field, nothing contacted', async () => {
    const config = b.config();
    (config.endpoints as Record<string, unknown>).sts = 'http://sts.example.com/v1/token';
    await fails(config, 78, /endpoints\.sts .*plain http is allowed only to loopback/);
    assert.deepEqual(b.world.gcp.requests, []);
  });

  test('an output directory not on tmpfs: 78 before anything remote', async () => {
    const disk = mkdtempSync(join(tmpdir(), 'tee-init-disk-'));
    try {
      const config = b.config({ output: { dir: join(disk, 'out') } });
      await fails(config, 78, /output\.dir .* is not on tmpfs/);
      assert.deepEqual(b.world.gcp.requests, []);
      assert.equal(existsSync(join(disk, 'out')), false);
    } finally {
      rmSync(disk, { recursive: true, force: true });
    }
  });

  test('a config error: 78 naming the field', async () => {
    const config = b.config();
    (config.secrets as Record<string, Record<string, unknown>>).key!.credentials = 'carol';
    await fails(config, 78, /secrets\.key\.credentials: found "carol", but no credentials have that name: write one of alice, bob/);
  });

  test('a transient 503 is retried and the boot succeeds', async () => {
    b.world.gcp.fault('sm', { status: 503, times: 2 }, { secret: 'projects/alice-proj/secrets/server-key' });
    const { proc, log } = b.start(b.config());
    assert.equal((await proc).exitCode, 0, log.text);
    assert.equal(log.records.filter((r) => /secret key .*retrying/.test(r.message)).length, 2);
    assert.ok(existsSync(b.marker));
    rmSync(b.marker);
    await restore();
  });
});

describe('PEM sanity at boot', () => {
  let b: Boot;
  let pkiDir: string;
  before(async () => {
    pkiDir = mkdtempSync(join(tmpdir(), 'tee-init-pki-'));
    const pki = createPki(pkiDir);
    const other = createPki(join(pkiDir, 'other'));
    b = await boot({ pem: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(other.server.key) } });
  });
  after(async () => {
    await b.close();
    rmSync(pkiDir, { recursive: true, force: true });
  });

  test('a key that does not match the certificate: 65 naming both, no child', async () => {
    const { proc, log } = b.start(b.config());
    const result = await proc;
    assert.equal(result.exitCode, 65, log.text);
    assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /secret key: private key matches no certificate among the secrets \(ca, cert\)/, "every certificate counts, the CA too");
    assert.equal(existsSync(b.marker), false);
    assert.deepEqual(b.leftovers(), []);
  });
});

describe('bootstrap interrupted', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  for (const [sig, status] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    test(`${sig} while secrets are being fetched: ${status}, no child, nothing left`, async () => {
      b.world.gcp.requests.length = 0;
      b.world.gcp.fault('sm', { hang: true }, { secret: 'projects/bob-proj/secrets/bob_psk' });
      const config = b.config();
      Object.assign(config.fetch as Record<string, unknown>, { deadline: '60s', attemptTimeout: '60s' });
      const { proc, log } = b.start(config);
      await b.world.gcp.waitForRequest((r) => r.api === 'sm' && /bob_psk/.test(r.secret ?? ''));
      proc.kill(sig);
      const result = await proc;
      assert.equal(result.exitCode, status, log.text);
      assert.ok(log.find(`${sig} before the child started: aborting bootstrap`));
      assert.equal(existsSync(b.marker), false);
      assert.deepEqual(b.leftovers(), []);
      b.world.gcp.clearFaults();
    });
  }

  test('other signals before the child exists are logged and dropped', async () => {
    b.world.gcp.requests.length = 0;
    b.world.gcp.fault('sm', { latencyMs: 500, times: 1 }, { secret: 'projects/bob-proj/secrets/bob_psk' });
    const { proc, log } = b.start(b.config({ run: { command: [node, '-e', "process.on('SIGHUP', () => console.log('child got HUP')); setTimeout(() => {}, 50)"] } }));
    await b.world.gcp.waitForRequest((r) => r.api === 'sm' && /bob_psk/.test(r.secret ?? '')); // arrived, answer delayed
    proc.kill('SIGHUP');
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.ok(log.find('SIGHUP before the child started: dropped'));
    assert.doesNotMatch(result.stdout as string, /child got HUP/);
    b.world.gcp.clearFaults();
  });
});

describe('a bug in the init', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());
  const preload = ['--disable-sigusr1', '--import', join(root, 'test', 'fixtures', 'throw-later.mjs')];

  test('during the bootstrap: 70, secrets wiped, no child', async () => {
    b.world.gcp.fault('sm', { hang: true }, { secret: 'projects/bob-proj/secrets/bob_psk' });
    const config = b.config();
    Object.assign(config.fetch as Record<string, unknown>, { deadline: '60s', attemptTimeout: '60s' });
    const { proc, log } = startInit(['--config', b.writeConfig(config)], { env: { TEE_TEST_THROW_AFTER_MS: '800' } }, preload);
    const result = await proc;
    assert.equal(result.exitCode, 70, log.text);
    assert.match(log.find('internal error')!.message, /injected bug/);
    assert.equal(existsSync(b.marker), false);
    assert.deepEqual(b.leftovers(), []);
    b.world.gcp.clearFaults();
  });

  test('while the child runs: the child is stopped with SIGTERM, secrets wiped, 70', async () => {
    // The child ignores SIGUSR2 (the init forwards it); the preloaded fixture throws on it.
    const config = b.config({ run: { command: ['sh', '-c', 'trap "" USR2; exec sleep 30'] } });
    const { proc, log } = startInit(['--config', b.writeConfig(config)], { env: { TEE_TEST_THROW_ON_SIGNAL: 'SIGUSR2' } }, preload);
    await log.waitFor('child started');
    proc.kill('SIGUSR2');
    const result = await proc;
    assert.equal(result.exitCode, 70, log.text);
    assert.ok(log.find('stopping the child'));
    assert.equal(log.find('child exited')!.signal, 'SIGTERM');
    assert.deepEqual(b.leftovers(), []);
  });
});
