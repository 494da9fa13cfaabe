// The teeserver fake over its UNIX socket, with plain node:http as the client.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { confidentialSpaceClaims, createAttestationKey, type AttestationKey } from './attestation.ts';
import { startTeeServer, type FakeTeeServer } from './teeserver.ts';

interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

function call(socketPath: string, method: string, path: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { host: 'localhost', 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body: text }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

describe('teeserver', () => {
  let dir: string;
  let key: AttestationKey;
  let tee: FakeTeeServer;
  const post = (body: unknown) => call(tee.socketPath, 'POST', '/v1/token', body);
  const nonce = (n: number) => 'n'.repeat(n);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tee-teeserver-'));
    key = await createAttestationKey();
    tee = await startTeeServer({ socketPath: join(dir, 'teeserver.sock'), key, claims: () => confidentialSpaceClaims() });
  });
  after(async () => {
    await tee.close();
    assert.equal(existsSync(join(dir, 'teeserver.sock')), false, 'close() removes the socket');
    rmSync(dir, { recursive: true, force: true });
  });

  test('GET /v1/token: a fresh default token, raw, as text/html', async () => {
    const res = await call(tee.socketPath, 'GET', '/v1/token');
    assert.equal(res.status, 200);
    assert.equal(res.contentType, 'text/html');
    const claims = await key.verify(res.body, { audience: 'https://sts.googleapis.com' });
    assert.equal(claims.swname, 'CONFIDENTIAL_SPACE');
    assert.equal(claims.exp! - claims.iat!, 3600);
  });

  test('POST /v1/token: the audience requested, eat_nonce a string for one nonce', async () => {
    const res = await post({ audience: 'https://peer.example', nonces: [nonce(10)], token_type: 'OIDC' });
    assert.equal(res.status, 200);
    assert.equal(res.contentType, 'text/html');
    const claims = await key.verify(res.body, { audience: 'https://peer.example' });
    assert.equal(claims.eat_nonce, nonce(10));
  });

  test('POST /v1/token: eat_nonce an array for several nonces; no nonces, no eat_nonce; PKI accepted', async () => {
    const several = await post({ audience: 'https://peer.example', nonces: [nonce(10), nonce(74)], token_type: 'PKI' });
    assert.equal(several.status, 200);
    assert.deepEqual((await key.verify(several.body)).eat_nonce, [nonce(10), nonce(74)]);
    const none = await post({ audience: 'https://peer.example', token_type: 'OIDC' });
    assert.equal(none.status, 200);
    assert.equal('eat_nonce' in (await key.verify(none.body)), false);
  });

  test('POST /v1/token: every caller error is a plain-text 400', async () => {
    const ok = { audience: 'https://peer.example', nonces: [nonce(10)], token_type: 'OIDC' };
    const cases: [string, unknown, RegExp][] = [
      ['unknown field', { ...ok, extra: 1 }, /unknown field "extra"/],
      ['not JSON', '{"audience":', /failed to parse POST body/],
      ['empty audience', { ...ok, audience: '' }, /audience/],
      ['missing audience', { nonces: ok.nonces, token_type: 'OIDC' }, /audience/],
      ['missing token_type', { audience: ok.audience, nonces: ok.nonces }, /^token_type is a required parameter$/],
      ['token_type LIMITED_AWS', { ...ok, token_type: 'LIMITED_AWS' }, /token_type/],
      ['empty nonce list', { ...ok, nonces: [] }, /nonces/],
      ['7 nonces', { ...ok, nonces: Array(7).fill(nonce(10)) }, /nonces/],
      ['a 9-byte nonce', { ...ok, nonces: [nonce(9)] }, /nonce/],
      ['a 75-byte nonce', { ...ok, nonces: [nonce(75)] }, /nonce/],
      ['a 76-byte nonce of 38 characters', { ...ok, nonces: ['é'.repeat(38)] }, /nonce/],
      ['nonces not strings', { ...ok, nonces: [1234567890] }, /nonces/],
      ['a 513-byte audience', { ...ok, audience: `https://${'a'.repeat(505)}` }, /audience/],
    ];
    for (const [what, body, message] of cases) {
      const res = await post(body);
      assert.equal(res.status, 400, what);
      assert.match(res.body, message, what);
      assert.equal(res.contentType, 'text/html', what);
    }
    assert.equal((await post({ ...ok, audience: `https://${'a'.repeat(504)}` })).status, 200, 'a 512-byte audience is fine');
  });

  test('other methods are 400, other paths 404', async () => {
    assert.equal((await call(tee.socketPath, 'PUT', '/v1/token', '{}')).status, 400);
    assert.deepEqual(await call(tee.socketPath, 'GET', '/v1/other'), { status: 404, contentType: 'text/html', body: '404 page not found\n' });
  });

  test('faults: a status for N requests, then normal; latency', async () => {
    tee.fault({ status: 500, body: 'failed to retrieve attestation service token', times: 1 });
    const failed = await call(tee.socketPath, 'GET', '/v1/token');
    assert.deepEqual([failed.status, failed.body], [500, 'failed to retrieve attestation service token']);
    assert.equal((await call(tee.socketPath, 'GET', '/v1/token')).status, 200);
    tee.fault({ latencyMs: 100, times: 1 });
    const start = Date.now();
    assert.equal((await call(tee.socketPath, 'GET', '/v1/token')).status, 200);
    assert.ok(Date.now() - start >= 100);
    assert.deepEqual(tee.requests.slice(-3).map((r) => [r.status, r.fault]), [[500, 'status'], [200, undefined], [200, 'latency']]);
  });

  test('a hung request is ended by close()', async () => {
    const other = await startTeeServer({ socketPath: join(dir, 'hang.sock'), key, claims: () => confidentialSpaceClaims() });
    other.fault({ hang: true });
    const pending = call(other.socketPath, 'GET', '/v1/token').then(
      () => assert.fail('a hung request got an answer'),
      (err: NodeJS.ErrnoException) => err.code,
    );
    await other.waitForRequest((r) => r.fault === 'hang');
    await other.close();
    assert.equal(await pending, 'ECONNRESET');
  });
});
