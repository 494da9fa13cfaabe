// The other ways to an identity and a secret: custom-audience tokens from the launcher's
// socket, Application Default Credentials, regional Secret Manager refs, local files; and the
// child's user and the files' owner.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { node } from '../helpers/init.ts';
import { isRoot } from '../helpers/tools.ts';
import { nodeForOtherUsers } from '../helpers/node-for-others.ts';

const HASHES = `const fs = require('fs'), c = require('crypto'); const out = {};
for (const f of fs.readdirSync(process.env.OUT).filter((f) => !f.startsWith('..'))) { const p = process.env.OUT + '/' + f, st = fs.statSync(p);
  out[f] = { sha: c.createHash('sha256').update(fs.readFileSync(p)).digest('hex'), uid: st.uid, gid: st.gid, mode: (st.mode & 0o777).toString(8) }; }
console.log(JSON.stringify({ files: out, uid: process.getuid(), gid: process.getgid(), user: process.env.USER, home: process.env.HOME }));`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('identities and sources', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  const onlyCa = (cred: Record<string, unknown>, ref = 'projects/bob-proj/secrets/ca/versions/latest') =>
    b.config({
      credentials: { bob: cred },
      secrets: { ca: { source: 'gcp', ref, credentials: 'bob', file: 'ca.pem' } },
      run: { command: [node, '-e', HASHES], env: { OUT: '{{output.dir}}' } },
    });

  test('a custom-audience token from the teeserver socket, exchanged at STS', async () => {
    const audience = 'https://bob.example.com/tee';
    b.world.gcp.world.providers[b.world.providers.bob]!.allowedAudiences = [audience];
    try {
      b.world.gcp.requests.length = 0;
      const config = onlyCa({ type: 'confidential-space', provider: b.world.providers.bob, token: { audience, nonces: ['0123456789abcdef'] } });
      (config.attestation as Record<string, unknown>).require = {};
      const { proc, log } = b.start(config);
      const result = await proc;
      assert.equal(result.exitCode, 0, log.text);
      assert.equal(JSON.parse(result.stdout as string).files['ca.pem'].sha, sha(b.values.ca!));
      const asked = b.world.teeserver!.requests.at(-1)!;
      assert.deepEqual(asked.options, { audience, token_type: 'OIDC', nonces: ['0123456789abcdef'] });
      assert.equal(log.find('attestation token read'), undefined, 'the default token file was not needed');
    } finally {
      delete b.world.gcp.world.providers[b.world.providers.bob]!.allowedAudiences;
    }
  });

  test('a custom-audience token from a debug image: 77 naming dbgstat, no exchange', async () => {
    const audience = 'https://bob.example.com/tee';
    b.world.gcp.world.providers[b.world.providers.bob]!.allowedAudiences = [audience];
    await b.world.writeToken({ dbgstat: 'enabled' }); // the teeserver signs the same claims
    try {
      const config = onlyCa({ type: 'confidential-space', provider: b.world.providers.bob, token: { audience, nonces: ['0123456789abcdef'] } });
      (config.attestation as Record<string, unknown>).require = {};
      const exchanged = () => b.world.gcp.requestsOf('sts').filter((r) => r.status === 200).length;
      const before = exchanged();
      const { proc, log } = b.start(config);
      const result = await proc;
      assert.equal(result.exitCode, 77, log.text);
      assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /credentials bob .*claim dbgstat is "enabled", not "disabled-since-boot"/);
      assert.equal(exchanged(), before, 'no exchange with a debug token');
    } finally {
      delete b.world.gcp.world.providers[b.world.providers.bob]!.allowedAudiences;
      await b.world.writeToken();
    }
  });

  test('Application Default Credentials (an external_account file, as outside a TEE)', async () => {
    const adcFile = join(b.dir, 'adc.json');
    writeFileSync(adcFile, JSON.stringify(b.world.externalAccount('bob')));
    // GOOGLE_CLOUD_PROJECT spares the library a Resource Manager lookup the fakes do not serve.
    const { proc, log } = b.start(onlyCa({ type: 'adc' }), [], { GOOGLE_APPLICATION_CREDENTIALS: adcFile, GOOGLE_CLOUD_PROJECT: 'bob-proj' });
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.equal(JSON.parse(result.stdout as string).files['ca.pem'].sha, sha(b.values.ca!));
  });

  test('a regional ref goes to the regional path (endpoint overridden here)', async () => {
    b.world.addSecret('projects/bob-proj/locations/europe-west4/secrets/regional-ca', b.values.ca!, { location: 'europe-west4' });
    b.world.gcp.requests.length = 0;
    const config = onlyCa({ type: 'confidential-space', provider: b.world.providers.bob }, 'projects/bob-proj/locations/europe-west4/secrets/regional-ca/versions/latest');
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.match(b.world.gcp.requestsOf('sm')[0]!.path, /^\/v1\/projects\/bob-proj\/locations\/europe-west4\/secrets\/regional-ca\/versions\/latest:access/);
  });

  test('source: file needs no attestation and no cloud', async () => {
    const local = join(b.dir, 'local-ca.pem');
    writeFileSync(local, b.values.ca!);
    b.world.gcp.requests.length = 0;
    const config = b.config({
      attestation: { tokenFile: join(b.dir, 'absent'), waitFor: '0s' },
      credentials: {},
      secrets: { ca: { source: 'file', path: local, file: 'ca.pem' } },
      run: { command: [node, '-e', HASHES], env: { OUT: '{{output.dir}}' } },
    });
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.equal(JSON.parse(result.stdout as string).files['ca.pem'].sha, sha(b.values.ca!));
    assert.deepEqual(b.world.gcp.requests, []);
  });

  test('run.user drops the child to that user; the files are chowned to it (as root)', async (t) => {
    if (!isRoot) return t.skip('needs root to switch user');
    chmodSync(b.dir, 0o711); // let nobody through to the output dir
    const nobodysNode = nodeForOtherUsers(); // the clone may sit in root's 0700 home
    t.after(() => nobodysNode.remove());
    const config = b.config({ run: { command: [nobodysNode.path, '-e', HASHES], env: { OUT: '{{output.dir}}' }, user: 'nobody' } });
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    const seen = JSON.parse(result.stdout as string);
    assert.equal(seen.uid, 65534);
    assert.equal(seen.user, 'nobody');
    for (const f of Object.values(seen.files) as { uid: number; mode: string }[]) assert.equal(f.uid, 65534);
    assert.equal(existsSync(b.outDir), false);
  });

  test('output.owner alone chowns the files and the directory', async (t) => {
    if (!isRoot) return t.skip('needs root to chown');
    const config = b.config({
      output: { dir: b.outDir, owner: 'nobody' },
      // -L: OUT/server.key is the symlink to ..data/server.key; ..data leads to the generation directory.
      run: { command: ['sh', '-c', 'stat -L -c "%u %a" "$OUT"/server.key "$OUT" "$OUT"/..data; cat "$OUT"/server.key >/dev/null'], env: { OUT: '{{output.dir}}' } },
    });
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text); // the root child can read anything
    assert.deepEqual((result.stdout as string).split('\n'), ['65534 400', '65534 700', '65534 700']);
  });
});

describe('secrets are wiped when the child ends', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  test('SIGTERM to the init: the child gets it, exits, the files are wiped, status 143', async () => {
    const config = b.config({ run: { command: ['sh', '-c', `ls "$OUT" > ${b.dir}/listing; exec sleep 30`], env: { OUT: '{{output.dir}}' } } });
    const { proc, log } = b.start(config);
    await log.waitFor('child started');
    assert.ok(existsSync(join(b.outDir, 'server.key')));
    proc.kill('SIGTERM');
    const result = await proc;
    assert.equal(result.exitCode, 143, log.text);
    assert.equal(existsSync(b.outDir), false);
    assert.ok(log.find('output directory wiped'));
  });
});
