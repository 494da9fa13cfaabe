// The default token (issue 22, part 3): the launcher's file, or, once the file is past its exp
// and the launcher does not refresh it, a default token from the teeserver (the fake launcher).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { currentToken, readAttestationToken } from '../../src/attest/token-file.ts';
import { InitError } from '../../src/lib/errors.ts';
import { confidentialSpaceClaims, createAttestationKey, writeTokenFile, type AttestationKey } from '../fakes/attestation.ts';
import { startTeeServer, type FakeTeeServer } from '../fakes/teeserver.ts';
import { memoryLog } from '../helpers/log.ts';

describe('the default token: file, else the teeserver', () => {
  let dir: string;
  let key: AttestationKey;
  let tee: FakeTeeServer;
  let file: string;
  const options = (extra: Record<string, unknown> = {}) => ({ path: file, waitForMs: 0, pollMs: 5, teeserver: { socketPath: tee.socketPath, timeoutMs: 5000 }, ...extra });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tee-token-file-'));
    file = join(dir, 'attestation_verifier_claims_token');
    key = await createAttestationKey();
    tee = await startTeeServer({ socketPath: join(dir, 'teeserver.sock'), key, claims: () => confidentialSpaceClaims({ swversion: ['from-teeserver'] }) });
  });
  after(async () => {
    await tee.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a fresh file is the token; the teeserver is not asked', async () => {
    const jwt = await key.sign(confidentialSpaceClaims());
    writeTokenFile(file, jwt);
    const asked = tee.requests.length;
    const token = await readAttestationToken(options(), memoryLog().log, new AbortController().signal);
    assert.equal(token.source, 'file');
    assert.equal(await currentToken(options()), jwt);
    assert.equal(tee.requests.length, asked);
  });

  test('a file past its exp: a fresh default token from the teeserver, saying when the file expired', async () => {
    writeTokenFile(file, await key.sign(confidentialSpaceClaims(), { expiresInSeconds: -30 }));
    const token = await readAttestationToken(options(), memoryLog().log, new AbortController().signal);
    assert.equal(token.source, 'teeserver');
    assert.deepEqual(token.claims.swversion, ['from-teeserver']);
    assert.ok(token.expiresAt!.getTime() > Date.now());
    assert.ok(token.fileExpiredAt!.getTime() < Date.now());
    const jwt = await currentToken(options());
    assert.deepEqual(decodeJwt(jwt).swversion, ['from-teeserver']);
    assert.equal((await key.verify(jwt, { audience: 'https://sts.googleapis.com' })).aud, 'https://sts.googleapis.com');
  });

  test('a file past its exp and a failing teeserver: waited for, the teeserver asked at most once a second, then 66 naming both', async () => {
    writeTokenFile(file, await key.sign(confidentialSpaceClaims(), { expiresInSeconds: -30 }));
    tee.fault({ status: 500, body: 'failed to retrieve attestation service token' });
    try {
      const asked = tee.requests.length;
      await assert.rejects(readAttestationToken(options({ waitForMs: 400 }), memoryLog().log, new AbortController().signal), (err: unknown) => {
        assert.ok(err instanceof InitError);
        assert.equal(err.exitCode, 66);
        assert.match(err.message, /expired at .*: the launcher did not refresh it, and no default token came from the teeserver instead \(teeserver .* answered 500 to the default token request: "failed to retrieve attestation service token"\)$/);
        return true;
      });
      assert.equal(tee.requests.length - asked, 1, 'one ask within the 400 ms wait, not one per 5 ms poll');
    } finally {
      tee.clearFaults();
    }
  });

  test('without a teeserver configured, an expired file is only waited for', async () => {
    writeTokenFile(file, await key.sign(confidentialSpaceClaims(), { expiresInSeconds: -30 }));
    await assert.rejects(currentToken({ path: file, waitForMs: 0 }), /expired at .*: the launcher did not refresh it$/);
  });
});
