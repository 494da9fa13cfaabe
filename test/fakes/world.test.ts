// The emulated world: its layout, its two collaborators, and the request log that lets a test
// check how many exchanges a run made, with which audiences.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { authClient, rejection, secretClient } from './clients.ts';
import { EXAMPLE_PROJECT_NUMBERS, poolMembers, startWorld, type EmulatedWorld } from './world.ts';

function getToken(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ socketPath, path: '/v1/token' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

describe('startWorld', () => {
  let w: EmulatedWorld;
  before(async () => {
    w = await startWorld();
    w.addSecret('projects/alice-proj/secrets/ca', 'ca');
    w.addSecret('projects/alice-proj/secrets/server-cert', [{ data: 'c1' }, { data: 'c2' }, { data: 'c3' }]);
    w.addSecret('projects/alice-proj/secrets/alice_psk', 'share-a');
    w.addSecret('projects/bob-proj/secrets/bob_psk', 'share-b');
  });
  after(() => w.close());

  test('endpoints and providers come in the shape of the config', () => {
    const base = `http://127.0.0.1:${w.gcp.port}`;
    assert.deepEqual(w.endpoints, { sts: `${base}/v1/token`, iamcredentials: base, secretmanager: base, teeserver: `${w.dir}/teeserver.sock` });
    assert.deepEqual(w.providers, {
      alice: 'projects/111/locations/global/workloadIdentityPools/alice-pool/providers/attestation',
      bob: 'projects/222/locations/global/workloadIdentityPools/bob-pool/providers/attestation',
    });
    assert.equal(w.collaborators.alice.serviceAccount, 'tee-reader@alice-proj.iam.gserviceaccount.com');
    assert.equal(w.collaborators.bob.serviceAccount, undefined);
  });

  test('the token file holds a signed production token for the world image', async () => {
    const claims = await w.key.verify(readFileSync(w.tokenFile, 'utf8'), { audience: 'https://sts.googleapis.com' });
    assert.equal(claims.dbgstat, 'disabled-since-boot');
    assert.equal((claims.submods as { container: { image_digest: string } }).container.image_digest, w.imageDigest);
  });

  test('two collaborators: one exchange each, with its own audience, reused across its secrets', async () => {
    const alice = secretClient(w.gcp.port, authClient(w.externalAccount('alice')));
    const bob = secretClient(w.gcp.port, authClient(w.externalAccount('bob')));
    const from = w.gcp.requests.length;
    try {
      const read = async (client: typeof alice, name: string) => (await client.accessSecretVersion({ name }))[0].payload!.data!.toString();
      const values = await Promise.all([
        read(alice, 'projects/alice-proj/secrets/ca/versions/latest'),
        read(alice, 'projects/alice-proj/secrets/server-cert/versions/3'),
        read(alice, 'projects/alice-proj/secrets/alice_psk/versions/latest'),
        read(bob, 'projects/bob-proj/secrets/bob_psk/versions/latest'),
      ]);
      assert.deepEqual(values, ['ca', 'c3', 'share-a', 'share-b']);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
    const log = w.gcp.requests.slice(from);
    assert.deepEqual(
      log.filter((r) => r.api === 'sts').map((r) => r.audience).sort(),
      [w.collaborators.alice.audience, w.collaborators.bob.audience],
      'one STS exchange per collaborator, even with concurrent reads',
    );
    assert.deepEqual(log.filter((r) => r.api === 'iam').map((r) => r.serviceAccount), [w.collaborators.alice.serviceAccount]);
    const sm = log.filter((r) => r.api === 'sm');
    assert.equal(sm.length, 4);
    assert.ok(sm.every((r) => r.status === 200));
    assert.equal(new Set(sm.filter((r) => r.secret!.startsWith('projects/alice-proj/')).map((r) => r.principal)).size, 1);
  });

  test("a collaborator's secrets are closed to the other one", async () => {
    const bob = secretClient(w.gcp.port, authClient(w.externalAccount('bob')));
    const alice = secretClient(w.gcp.port, authClient(w.externalAccount('alice')));
    try {
      assert.equal((await rejection(bob.accessSecretVersion({ name: 'projects/alice-proj/secrets/ca/versions/1' }))).code, 7);
      assert.equal((await rejection(alice.accessSecretVersion({ name: 'projects/bob-proj/secrets/bob_psk/versions/1' }))).code, 7);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });

  test('writeToken rewrites the token file and the teeserver follows', async () => {
    try {
      await w.writeToken({ dbgstat: 'enabled', swversion: ['240900'] });
      const file = await w.key.verify(readFileSync(w.tokenFile, 'utf8'));
      assert.equal(file.dbgstat, 'enabled');
      const served = await w.key.verify(await getToken(w.endpoints.teeserver!));
      assert.deepEqual(served.swversion, ['240900']);
      const err = await rejection(authClient(w.externalAccount('alice')).getAccessToken());
      assert.match(err.message, /invalid_grant: .*dbgstat is enabled/);
      await w.writeToken({ swversion: ['240900'] });
      assert.equal((await w.key.verify(readFileSync(w.tokenFile, 'utf8'))).dbgstat, 'disabled-since-boot', 'overrides do not accumulate');
    } finally {
      await w.writeToken();
    }
  });
});

test('close() removes the directory and stops every server', async () => {
  const w = await startWorld({ imageDigest: `sha256:${'e'.repeat(64)}`, claims: { hwmodel: 'GCP_AMD_SEV' } });
  assert.equal(w.claims().hwmodel, 'GCP_AMD_SEV');
  assert.equal(w.claims().submods.container.image_digest, `sha256:${'e'.repeat(64)}`);
  await authClient(w.externalAccount('bob')).getAccessToken();
  await w.close();
  assert.equal(existsSync(w.dir), false);
  await assert.rejects(fetch(w.endpoints.sts, { method: 'POST' }), /fetch failed/);
});

describe('startWorld for the examples: their project numbers, more service accounts, a version disabled while it runs', () => {
  test('projectNumbers names the providers and the pool; addServiceAccount lets alice\'s pool act as it; setVersionState disables a version', async () => {
    const w = await startWorld({ projectNumbers: EXAMPLE_PROJECT_NUMBERS, teeserver: false });
    try {
      assert.equal(w.providers.alice, 'projects/111111111111/locations/global/workloadIdentityPools/alice-pool/providers/attestation');
      assert.equal(poolMembers(w.collaborators.bob), 'principalSet://iam.googleapis.com/projects/222222222222/locations/global/workloadIdentityPools/bob-pool/*');
      const caller = 'tee-caller@alice-proj.iam.gserviceaccount.com';
      w.addServiceAccount(caller);
      w.addSecret('projects/alice-proj/secrets/s', [{ data: 'one' }, { data: 'two' }], { access: [caller] });
      const asCaller = { ...w.externalAccount('alice'), service_account_impersonation_url: `${w.gcp.url}/v1/projects/-/serviceAccounts/${caller}:generateAccessToken` };
      const client = secretClient(w.gcp.port, authClient(asCaller));
      try {
        const read = async () => (await client.accessSecretVersion({ name: 'projects/alice-proj/secrets/s/versions/latest' }))[0].payload!.data!.toString();
        assert.equal(await read(), 'two');
        w.setVersionState('projects/alice-proj/secrets/s', 2, 'DISABLED');
        assert.match((await rejection(read())).message, /DISABLED state/);
        assert.throws(() => w.setVersionState('projects/alice-proj/secrets/s', 3, 'ENABLED'), /no version 3 of secret projects\/alice-proj\/secrets\/s/);
      } finally {
        await client.close();
      }
    } finally {
      await w.close();
    }
  });
});
