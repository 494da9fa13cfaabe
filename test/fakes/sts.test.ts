// STS and IAM credentials fakes, driven by the real google-auth-library (and by raw requests
// for the wire checks the library never gets wrong).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { confidentialSpaceClaims, createAttestationKey, writeTokenFile } from './attestation.ts';
import { authClient, rejection } from './clients.ts';
import { startWorld, type EmulatedWorld } from './world.ts';

const FORM = {
  grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
  requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
  subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
  scope: 'https://www.googleapis.com/auth/cloud-platform',
};

describe('STS and IAM credentials with google-auth-library', () => {
  let w: EmulatedWorld;
  before(async () => (w = await startWorld({ teeserver: false })));
  after(() => w.close());

  test('bob: the attestation token is exchanged for a federated access token', async () => {
    const before = w.gcp.requests.length;
    const { token } = await authClient(w.externalAccount('bob')).getAccessToken();
    assert.match(token ?? '', /^ya29\./);
    const [sts, ...rest] = w.gcp.requests.slice(before);
    assert.equal(rest.length, 0, 'no impersonation for bob');
    assert.equal(sts!.api, 'sts');
    assert.equal(sts!.status, 200);
    assert.equal(sts!.audience, w.collaborators.bob.audience);
    assert.equal(sts!.principal, `principal://iam.googleapis.com/projects/222/locations/global/workloadIdentityPools/bob-pool/subject/${w.claims().sub}`);
  });

  test('alice: the federated token then impersonates her service account', async () => {
    const before = w.gcp.requests.length;
    const { token } = await authClient(w.externalAccount('alice')).getAccessToken();
    assert.match(token ?? '', /^ya29\./);
    const [sts, iam] = w.gcp.requests.slice(before);
    assert.equal(sts!.status, 200);
    assert.equal(iam!.api, 'iam');
    assert.equal(iam!.status, 200);
    assert.equal(iam!.serviceAccount, w.collaborators.alice.serviceAccount);
    assert.equal(iam!.principal, sts!.principal);
  });

  test('a token that fails the attribute condition: invalid_grant, with the reason', async () => {
    await w.writeToken({ dbgstat: 'enabled' });
    try {
      const err = await rejection(authClient(w.externalAccount('bob')).getAccessToken());
      // The library turns the OAuth error body into `Error code <error>: <description>`.
      assert.equal(err.constructor.name, 'Error');
      assert.match(err.message, /^Error code invalid_grant: The given credential is rejected by the attribute condition\. \(dbgstat is enabled\)$/);
      assert.equal(err.status, 400);
      assert.equal(err.code, 400);
      assert.deepEqual((err.response as { data: unknown }).data, {
        error: 'invalid_grant',
        error_description: 'The given credential is rejected by the attribute condition. (dbgstat is enabled)',
      });
    } finally {
      await w.writeToken();
    }
  });

  test('a token signed by another key: invalid_grant', async () => {
    const other = await createAttestationKey();
    writeTokenFile(w.tokenFile, await other.sign(w.claims()));
    try {
      const err = await rejection(authClient(w.externalAccount('alice')).getAccessToken());
      assert.match(err.message, /^Error code invalid_grant: Invalid ID Token/);
    } finally {
      await w.writeToken();
    }
  });

  test('an expired token, a wrong image digest, a wrong audience: invalid_grant', async () => {
    try {
      await w.writeToken({}, { expiresInSeconds: -5 });
      assert.match((await rejection(authClient(w.externalAccount('bob')).getAccessToken())).message, /invalid_grant: ID Token expired/);
      await w.writeToken({ submods: { container: { image_digest: `sha256:${'0'.repeat(64)}` } } });
      assert.match((await rejection(authClient(w.externalAccount('bob')).getAccessToken())).message, /invalid_grant: .*image_digest/);
      await w.writeToken({}, { audience: 'https://elsewhere.example' });
      assert.match((await rejection(authClient(w.externalAccount('bob')).getAccessToken())).message, /invalid_grant: The audience in ID Token/);
    } finally {
      await w.writeToken();
    }
  });

  test('an unknown provider: invalid_target', async () => {
    const config = { ...w.externalAccount('bob'), audience: '//iam.googleapis.com/projects/999/locations/global/workloadIdentityPools/nope/providers/attestation' };
    const err = await rejection(authClient(config).getAccessToken());
    assert.match(err.message, /^Error code invalid_target: /);
    assert.equal(err.status, 400);
  });

  test("impersonating a service account the provider may not use: a GaxiosError 403 from IAM", async () => {
    const config = { ...w.externalAccount('bob'), service_account_impersonation_url: w.externalAccount('alice').service_account_impersonation_url! };
    const before = w.gcp.requests.length;
    const err = await rejection(authClient(config).getAccessToken());
    assert.equal(err.constructor.name, 'GaxiosError');
    assert.equal(err.status, 403);
    assert.equal(err.message, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).");
    assert.deepEqual(
      w.gcp.requests.slice(before).map((r) => [r.api, r.status]),
      [['sts', 200], ['iam', 403]],
    );
  });

  test('a 503 from STS once is retried by the library and then succeeds', async () => {
    w.gcp.fault('sts', { status: 503, times: 1 });
    const before = w.gcp.requests.length;
    await authClient(w.externalAccount('bob')).getAccessToken();
    assert.deepEqual(
      w.gcp.requests.slice(before).map((r) => [r.api, r.status, r.fault]),
      [['sts', 503, 'status'], ['sts', 200, undefined]],
    );
  });
});

describe('STS and IAM credentials on the wire', () => {
  let w: EmulatedWorld;
  before(async () => (w = await startWorld({ teeserver: false })));
  after(() => w.close());

  const sts = async (fields: Record<string, string | undefined>, contentType = 'application/x-www-form-urlencoded') => {
    const body = new URLSearchParams(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined));
    const res = await fetch(w.endpoints.sts, { method: 'POST', headers: { 'content-type': contentType }, body: body.toString() });
    return { status: res.status, body: (await res.json()) as { error?: string; access_token?: string; expires_in?: number } };
  };
  const valid = async () => ({ ...FORM, audience: w.collaborators.bob.audience, subject_token: await w.key.sign(w.claims()) });

  test('a valid exchange answers the RFC 8693 response', async () => {
    const { status, body } = await sts(await valid());
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'issued_token_type', 'token_type']);
    assert.equal(body.expires_in, 3600);
  });

  test('each parameter is checked exactly', async () => {
    const ok = await valid();
    assert.equal((await sts({ ...ok, grant_type: 'client_credentials' })).body.error, 'unsupported_grant_type');
    assert.equal((await sts({ ...ok, requested_token_type: 'urn:ietf:params:oauth:token-type:id_token' })).body.error, 'invalid_request');
    assert.equal((await sts({ ...ok, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' })).body.error, 'invalid_request');
    assert.equal((await sts({ ...ok, scope: 'https://www.googleapis.com/auth/devstorage.read_only' })).body.error, 'invalid_scope');
    assert.equal((await sts({ ...ok, audience: w.collaborators.bob.provider })).body.error, 'invalid_target', 'the audience needs //iam.googleapis.com/');
    assert.equal((await sts({ ...ok, subject_token: 'not-a-jwt' })).body.error, 'invalid_grant');
    assert.equal((await sts(ok, 'application/json')).status, 400);
  });

  test('a custom provider: allowed audiences and issuer', async () => {
    const name = 'projects/5/locations/global/workloadIdentityPools/p/providers/custom';
    w.gcp.world.providers[name] = { allowedAudiences: ['https://custom.example'] };
    const ok = { ...(await valid()), audience: `//iam.googleapis.com/${name}` };
    assert.equal((await sts(ok)).body.error, 'invalid_grant', 'sts.googleapis.com is not allowed by this provider');
    assert.equal((await sts({ ...ok, subject_token: await w.key.sign(w.claims(), { audience: 'https://custom.example' }) })).status, 200);
    const foreign = confidentialSpaceClaims({ iss: 'https://issuer.example' });
    assert.equal((await sts({ ...ok, subject_token: await w.key.sign(foreign, { audience: 'https://custom.example' }) })).body.error, 'invalid_grant');
  });

  test('generateAccessToken: bearer, scope, lifetime and grant are checked', async () => {
    const url = w.externalAccount('alice').service_account_impersonation_url!;
    const aliceToken = (await sts({ ...(await valid()), audience: w.collaborators.alice.audience })).body.access_token!;
    const call = async (token: string | undefined, body: unknown, target = url) => {
      const res = await fetch(target, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { status: string } } };
    };
    const scope = ['https://www.googleapis.com/auth/cloud-platform'];
    const ok = await call(aliceToken, { scope, lifetime: '3600s' });
    assert.equal(ok.status, 200);
    assert.match(String(ok.body.expireTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(String(ok.body.accessToken), /^ya29\./);
    assert.deepEqual((await call(undefined, { scope })).body.error?.status, 'UNAUTHENTICATED');
    assert.deepEqual((await call('ya29.unknown', { scope })).body.error?.status, 'UNAUTHENTICATED');
    assert.deepEqual((await call(aliceToken, { scope: ['email'] })).body.error?.status, 'INVALID_ARGUMENT');
    assert.deepEqual((await call(aliceToken, { scope, lifetime: '7200s' })).body.error?.status, 'INVALID_ARGUMENT');
    const unknown = url.replace('tee-reader@', 'nobody@');
    assert.deepEqual(await call(aliceToken, { scope }, unknown), {
      status: 403,
      body: { error: { code: 403, message: "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).", status: 'PERMISSION_DENIED' } },
    });
    // A service account's own token cannot impersonate further.
    assert.equal((await call(String(ok.body.accessToken), { scope })).status, 403);
  });

  test('expireTokens() and expireTokensAfterMs make issued tokens stop working', async () => {
    const token = (await sts(await valid())).body.access_token!;
    const secret = `${w.endpoints.secretmanager}/v1/projects/bob-proj/secrets/s/versions/1:access`;
    w.addSecret('projects/bob-proj/secrets/s', 'x');
    const get = async (t: string) => (await fetch(secret, { headers: { authorization: `Bearer ${t}` } })).status;
    assert.equal(await get(token), 200);
    w.gcp.expireTokens();
    assert.equal(await get(token), 401);
    w.gcp.expireTokensAfterMs = 0;
    try {
      assert.equal(await get((await sts(await valid())).body.access_token!), 401, 'born expired');
    } finally {
      w.gcp.expireTokensAfterMs = undefined;
    }
  });
});
