// The Secret Manager fake, read through the real @google-cloud/secret-manager client in REST
// fallback mode, authenticated by the real google-auth-library against the STS/IAM fakes.
// The error assertions pin down the shapes tee-init has to classify.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { authClient, closedPort, rejection, secretClient } from './clients.ts';
import { crc32c } from './secretmanager.ts';
import { startWorld, type EmulatedWorld } from './world.ts';

const NO_RETRY = { retry: null } as const;

describe('Secret Manager through the real client', () => {
  let w: EmulatedWorld;
  let alice: SecretManagerServiceClient;
  let bob: SecretManagerServiceClient;
  before(async () => {
    w = await startWorld({ teeserver: false });
    w.addSecret('projects/alice-proj/secrets/ca', 'a\n');
    w.addSecret('projects/alice-proj/secrets/key', [{ data: 'v1' }, { data: '123456789' }, { data: 'v3', state: 'DISABLED' }, { data: 'v4' }]);
    w.addSecret('projects/alice-proj/secrets/rotating', [{ data: 'old' }, { data: 'new', state: 'DESTROYED' }]);
    w.addSecret('projects/alice-proj/secrets/regional', 'eu only', { location: 'europe-west4' });
    w.addSecret('projects/alice-proj/secrets/nocrc', [{ data: 'x', omitCrc32c: true }]);
    w.addSecret('projects/bob-proj/secrets/psk', Buffer.from([0, 1, 2, 255]));
    alice = secretClient(w.gcp.port, authClient(w.externalAccount('alice')));
    bob = secretClient(w.gcp.port, authClient(w.externalAccount('bob')));
  });
  after(async () => {
    await Promise.all([alice.close(), bob.close()]);
    await w.close();
  });

  test('this constructor shape talks REST to the fake, with the bearer of the impersonated account', async () => {
    const [res] = await alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/ca/versions/1' });
    assert.ok(Buffer.isBuffer(res.payload?.data));
    assert.equal(res.payload!.data!.toString(), 'a\n');
    const last = w.gcp.requestsOf('sm').at(-1)!;
    assert.equal(last.principal, `serviceAccount:${w.collaborators.alice.serviceAccount}`);
    assert.equal(last.path, '/v1/projects/alice-proj/secrets/ca/versions/1:access');
  });

  test('dataCrc32c is the CRC32C of the data, as a decimal string', async () => {
    assert.equal(crc32c(Buffer.from('a\n')), 163439259);
    assert.equal(crc32c(Buffer.from('123456789')), 3808858755);
    const [ca] = await alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/ca/versions/1' });
    assert.equal(ca.payload!.dataCrc32c, '163439259');
    const [key] = await alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/key/versions/2' });
    assert.equal(key.payload!.dataCrc32c, '3808858755');
    assert.equal(BigInt(key.payload!.dataCrc32c as string), BigInt(crc32c(key.payload!.data as Buffer)));
    const [none] = await alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/nocrc/versions/1' });
    assert.equal(none.payload!.dataCrc32c, undefined, 'an absent checksum stays absent (not "0")');
  });

  test('latest resolves to the newest version; names carry the project number and the version number', async () => {
    const [res] = await alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/key/versions/latest' });
    assert.equal(res.name, 'projects/111/secrets/key/versions/4');
    assert.equal(res.payload!.data!.toString(), 'v4');
    const [byNumber] = await alice.accessSecretVersion({ name: 'projects/111/secrets/key/versions/1' });
    assert.equal(byNumber.name, 'projects/111/secrets/key/versions/1');
  });

  test('a regional secret is read by its regional name, and only by it', async () => {
    const [res] = await alice.accessSecretVersion({ name: 'projects/alice-proj/locations/europe-west4/secrets/regional/versions/latest' });
    assert.equal(res.name, 'projects/111/locations/europe-west4/secrets/regional/versions/1');
    assert.equal(res.payload!.data!.toString(), 'eu only');
    const err = await rejection(alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/regional/versions/1' }));
    assert.equal(err.code, 5);
  });

  test('bob reads with his federated principal directly', async () => {
    const [res] = await bob.accessSecretVersion({ name: 'projects/bob-proj/secrets/psk/versions/latest' });
    assert.deepEqual([...res.payload!.data!], [0, 1, 2, 255]);
    assert.match(w.gcp.requestsOf('sm').at(-1)!.principal!, /^principal:\/\/iam\.googleapis\.com\/projects\/222\/locations\/global\/workloadIdentityPools\/bob-pool\/subject\//);
  });

  test('NOT_FOUND: a GoogleError with code 5 and httpStatusCode 404', async () => {
    for (const name of ['projects/alice-proj/secrets/nope/versions/1', 'projects/alice-proj/secrets/ca/versions/7']) {
      const err = await rejection(alice.accessSecretVersion({ name }));
      assert.equal(err.constructor.name, 'GoogleError');
      assert.equal(err.code, 5);
      assert.equal(err.httpStatusCode, 404);
      assert.equal(err.cause, undefined, 'decoded from the body: no cause');
    }
    const err = await rejection(alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/ca/versions/7' }));
    assert.equal(err.message, 'Secret Version [projects/111/secrets/ca/versions/7] not found.');
  });

  test('PERMISSION_DENIED: code 7, httpStatusCode 403, the GaxiosError as cause', async () => {
    const err = await rejection(bob.accessSecretVersion({ name: 'projects/alice-proj/secrets/ca/versions/1' }));
    assert.equal(err.constructor.name, 'GoogleError');
    assert.equal(err.code, 7);
    assert.equal(err.httpStatusCode, 403);
    assert.equal(err.message, "Permission 'secretmanager.versions.access' denied for resource 'projects/alice-proj/secrets/ca/versions/1' (or it may not exist).");
    assert.equal((err.cause as Error).constructor.name, 'GaxiosError');
  });

  test('FAILED_PRECONDITION: code 9 for a disabled or destroyed version, also when latest is one', async () => {
    const disabled = await rejection(alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/key/versions/3' }));
    assert.equal(disabled.code, 9);
    assert.equal(disabled.httpStatusCode, 400);
    assert.equal(disabled.message, 'Secret Version [projects/111/secrets/key/versions/3] is in DISABLED state.');
    const latest = await rejection(alice.accessSecretVersion({ name: 'projects/alice-proj/secrets/rotating/versions/latest' }));
    assert.equal(latest.code, 9);
    assert.equal(latest.message, 'Secret Version [projects/111/secrets/rotating/versions/2] is in DESTROYED state.');
  });

  test('an STS refusal inside a Secret Manager call: code 3 (from HTTP 400), the OAuth message kept', async () => {
    await w.writeToken({ dbgstat: 'enabled' });
    const client = secretClient(w.gcp.port, authClient(w.externalAccount('bob')));
    try {
      const err = await rejection(client.accessSecretVersion({ name: 'projects/bob-proj/secrets/psk/versions/1' }));
      assert.equal(err.constructor.name, 'GoogleError');
      assert.equal(err.code, 3);
      assert.equal(err.httpStatusCode, 400);
      assert.match(err.message, /^Error code invalid_grant: /);
    } finally {
      await client.close();
      await w.writeToken();
    }
  });

  test('connection refused: code 14, no httpStatusCode, the GaxiosError (ECONNREFUSED) as cause', async () => {
    const client = secretClient(await closedPort(), authClient(w.externalAccount('bob')));
    try {
      const err = await rejection(client.accessSecretVersion({ name: 'projects/bob-proj/secrets/psk/versions/1' }, NO_RETRY));
      assert.equal(err.constructor.name, 'GoogleError');
      assert.equal(err.code, 14);
      assert.equal(err.httpStatusCode, undefined);
      assert.equal((err.cause as { code?: string }).code, 'ECONNREFUSED');
    } finally {
      await client.close();
    }
  });

  // Last: expireTokens() also invalidates the shared clients' cached tokens.
  test('UNAUTHENTICATED: code 16 once the fake stops accepting the cached token', async () => {
    const client = secretClient(w.gcp.port, authClient(w.externalAccount('bob')));
    try {
      await client.accessSecretVersion({ name: 'projects/bob-proj/secrets/psk/versions/1' });
      w.gcp.expireTokens();
      const err = await rejection(client.accessSecretVersion({ name: 'projects/bob-proj/secrets/psk/versions/1' }));
      assert.equal(err.constructor.name, 'GoogleError');
      assert.equal(err.code, 16);
      assert.equal(err.httpStatusCode, 401);
      assert.equal((err.cause as Error).constructor.name, 'GaxiosError');
    } finally {
      await client.close();
    }
  });
});
