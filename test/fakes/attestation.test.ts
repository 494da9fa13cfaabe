// The attestation fake: keys, claims, the token file.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { decodeProtectedHeader, errors } from 'jose';
import { confidentialSpaceClaims, createAttestationKey, deepMerge, writeTokenFile } from './attestation.ts';

describe('attestation key', () => {
  test('signs RS256 with its kid, verifies, and publishes the public key', async () => {
    const key = await createAttestationKey('k1');
    const jwt = await key.sign(confidentialSpaceClaims());
    assert.deepEqual(decodeProtectedHeader(jwt), { alg: 'RS256', kid: 'k1', typ: 'JWT' });
    const claims = await key.verify(jwt, { audience: 'https://sts.googleapis.com' });
    assert.equal(claims.swname, 'CONFIDENTIAL_SPACE');
    assert.equal(key.jwks.keys.length, 1);
    assert.equal(key.jwks.keys[0]!.kid, 'k1');
    assert.equal(key.jwks.keys[0]!.d, undefined, 'no private part in the JWKS');
  });

  test('expiresInSeconds and audience override the claims; an expired token does not verify', async () => {
    const key = await createAttestationKey();
    const custom = await key.verify(await key.sign(confidentialSpaceClaims(), { audience: 'https://me', expiresInSeconds: 60 }));
    assert.equal(custom.aud, 'https://me');
    assert.equal(custom.exp! - custom.iat!, 3600, 'a token always lives 1 h; expiresInSeconds is the time left');
    const expired = await key.sign(confidentialSpaceClaims(), { expiresInSeconds: -60 });
    await assert.rejects(key.verify(expired), errors.JWTExpired);
    const other = await createAttestationKey();
    await assert.rejects(other.verify(await key.sign(confidentialSpaceClaims())), errors.JWSSignatureVerificationFailed);
  });
});

describe('confidentialSpaceClaims', () => {
  test('is a production-image claim set valid for 1 h', () => {
    const c = confidentialSpaceClaims();
    assert.equal(c.iss, 'https://confidentialcomputing.googleapis.com');
    assert.equal(c.aud, 'https://sts.googleapis.com');
    assert.equal(c.exp - c.iat, 3600);
    assert.equal(c.dbgstat, 'disabled-since-boot');
    assert.equal(c.hwmodel, 'GCP_INTEL_TDX');
    assert.equal(c.oemid, 11129);
    assert.deepEqual(c.submods.confidential_space.support_attributes, ['LATEST', 'STABLE', 'USABLE']);
    assert.match(c.submods.container.image_digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(c.submods.container.restart_policy, 'Never');
    assert.match(c.sub, /^https:\/\/www\.googleapis\.com\/compute\/v1\/projects\/.+\/instances\//);
  });

  test('deep-merges overrides: objects merge, arrays replace, undefined removes', () => {
    const c = confidentialSpaceClaims({
      dbgstat: 'enabled',
      submods: { container: { image_digest: 'sha256:00', args: ['--x'] }, confidential_space: { support_attributes: ['EXPERIMENTAL'] } },
      google_service_accounts: undefined,
    });
    assert.equal(c.dbgstat, 'enabled');
    assert.equal(c.submods.container.image_digest, 'sha256:00');
    assert.equal(c.submods.container.restart_policy, 'Never', 'siblings survive');
    assert.deepEqual(c.submods.container.args, ['--x']);
    assert.deepEqual(c.submods.confidential_space.support_attributes, ['EXPERIMENTAL']);
    assert.equal('google_service_accounts' in c, false);
    const base = { a: { b: 1 } };
    deepMerge(base, { a: { b: 2 } });
    assert.deepEqual(base, { a: { b: 1 } }, 'the base is not mutated');
  });
});

test('writeTokenFile replaces the file atomically and leaves no temporary file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tee-token-'));
  try {
    const path = join(dir, 'attestation_verifier_claims_token');
    writeTokenFile(path, 'first');
    writeTokenFile(path, 'second');
    assert.equal(readFileSync(path, 'utf8'), 'second');
    assert.deepEqual(readdirSync(dir), ['attestation_verifier_claims_token']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
