import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkClaims, checkDebug, claimAt, claimsSummary } from '../../src/attest/claims.ts';
import { InitError } from '../../src/lib/errors.ts';

const claims = {
  swname: 'CONFIDENTIAL_SPACE',
  dbgstat: 'disabled-since-boot',
  hwmodel: 'GCP_INTEL_TDX',
  secboot: true,
  swversion: ['250301'],
  exp: 2_000_000_000,
  submods: { container: { image_digest: 'sha256:abc' }, confidential_space: { support_attributes: ['LATEST', 'STABLE'] } },
};

const refused = (require: Record<string, never | string | boolean | string[]>, pattern: RegExp) =>
  assert.throws(() => checkClaims(claims, require), (e: unknown) => e instanceof InitError && e.exitCode === 77 && pattern.test(e.message));

test('dotted paths', () => {
  assert.equal(claimAt(claims, 'submods.container.image_digest'), 'sha256:abc');
  assert.equal(claimAt(claims, 'submods.nope.x'), undefined);
  assert.equal(claimAt(claims, 'swname.x'), undefined);
});

test('scalars must match; a list claim must contain the value; a list expectation is any-of', () => {
  checkClaims(claims, { swname: 'CONFIDENTIAL_SPACE', 'submods.container.image_digest': 'sha256:abc', secboot: true });
  checkClaims(claims, { 'submods.confidential_space.support_attributes': 'STABLE' });
  checkClaims(claims, { hwmodel: ['GCP_AMD_SEV', 'GCP_INTEL_TDX'], swversion: '250301' });
});

test('a mismatch names the claim, what it is and what was wanted: exit 77', () => {
  refused({ dbgstat: 'enabled' }, /claim dbgstat is "disabled-since-boot", attestation\.require wants "enabled"/);
  refused({ 'submods.container.image_digest': 'sha256:def' }, /claim submods\.container\.image_digest is "sha256:abc"/);
  refused({ 'submods.confidential_space.support_attributes': 'EXPERIMENTAL' }, /support_attributes is \["LATEST","STABLE"\]/);
  refused({ 'submods.gce.zone': 'x' }, /claim submods\.gce\.zone is absent/);
  refused({ hwmodel: ['GCP_AMD_SEV'] }, /wants one of \["GCP_AMD_SEV"\]/);
});

test('the summary carries facts about the VM, not the token', () => {
  const s = claimsSummary(claims);
  assert.equal(s.imageDigest, 'sha256:abc');
  assert.equal(s.expiresAt, new Date(2_000_000_000_000).toISOString());
});

test('dbgstat: a debug image is refused (77 naming the claim) unless allowDebug; absent counts as debug', () => {
  assert.equal(checkDebug(claims, false), false);
  for (const dbgstat of ['enabled', undefined]) {
    const debug = { ...claims, dbgstat };
    assert.throws(() => checkDebug(debug, false), (e: unknown) =>
      e instanceof InitError && e.exitCode === 77 && e.detail?.claim === 'dbgstat'
      && /claim dbgstat is (?:"enabled"|absent), not "disabled-since-boot": on a debug image the operator can read the secrets.*attestation\.allowDebug: true/.test(e.message));
    assert.equal(checkDebug(debug, true), true, 'allowed, and said so');
  }
});

test('a token whose exp no Date can hold is summarized without it, not a crash', () => {
  assert.equal(claimsSummary({ ...claims, exp: 1e20 }).expiresAt, undefined);
  assert.equal(claimsSummary({ ...claims, exp: 'soon' as unknown as number }).expiresAt, undefined);
});
