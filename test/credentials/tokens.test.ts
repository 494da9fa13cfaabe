// Token sources against the loopback fakes: real google-auth-library exchanges, real
// generateIdToken answers signed by the fake Google key, the real teeserver socket protocol.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tokenConfigProblem, type ManagedTokenSources } from '../../src/credentials/tokens/index.ts';
import type { TokenConfig } from '../../src/credentials/token-types.ts';
import { InitError } from '../../src/lib/errors.ts';
import { EXIT } from '../../src/lib/exit-codes.ts';
import '../fakes/clients.ts';
import { GOOGLE_ISSUER } from '../fakes/iamcredentials.ts';
import { startWorld, type EmulatedWorld } from '../fakes/world.ts';
import { worldCredentials, worldTokenSources } from '../helpers/egress.ts';
import { memoryLog, type MemoryLog } from '../helpers/log.ts';

describe('token sources', () => {
  let w: EmulatedWorld;
  let offset = 0;
  const now = () => Date.now() + offset;
  let logs: MemoryLog;
  const made: ManagedTokenSources[] = [];

  before(async () => {
    w = await startWorld({ now });
  });
  after(async () => {
    for (const s of made) s.close();
    await w.close();
  });

  const credentials = () => worldCredentials(w);
  const sources = () => {
    logs = memoryLog('trace');
    const s = worldTokenSources(w, logs, now);
    made.push(s);
    return s;
  };
  const idMints = () => w.gcp.requestsOf('iam').filter((r) => r.path.endsWith(':generateIdToken'));

  test('id-token: Google-signed, audience as asked, the service account as email', async () => {
    const tokens = sources();
    const token = await tokens.source({ kind: 'id-token', credentials: 'alice' }).get('https://hello-abc.a.run.app');
    const claims = await w.gcp.googleKey.verify(token.value, { audience: 'https://hello-abc.a.run.app' });
    assert.equal(claims.iss, GOOGLE_ISSUER);
    assert.equal(claims.email, w.collaborators.alice.serviceAccount);
    assert.equal(token.expiresAt, (claims.exp as number) * 1000);
    // Asked with the federated (STS) token, not through an impersonated access token.
    assert.match(idMints().at(-1)!.principal!, /^principal:\/\/iam.googleapis.com\/projects\/111\//);
  });

  test('100 concurrent gets mint once; a cached token costs no request; another audience mints again', async () => {
    const tokens = sources();
    const before = idMints().length;
    const src = tokens.source({ kind: 'id-token', credentials: 'alice' });
    const all = await Promise.all(Array.from({ length: 100 }, () => src.get('https://one.example')));
    assert.equal(new Set(all.map((t) => t.value)).size, 1);
    assert.equal(idMints().length - before, 1);
    await src.get('https://one.example');
    assert.equal(idMints().length - before, 1);
    // The same config elsewhere shares the cache.
    await tokens.source({ kind: 'id-token', credentials: 'alice' }).get('https://one.example');
    assert.equal(idMints().length - before, 1);
    await src.get('https://two.example');
    assert.equal(idMints().length - before, 2);
    assert.deepEqual(idMints().slice(-2).map((r) => r.idTokenAudience), ['https://one.example', 'https://two.example']);
    assert.equal(tokens.stats().mints, 2);
  });

  test('refreshed ahead of expiry in the background, and waited for once expired', async () => {
    const tokens = sources();
    const src = tokens.source({ kind: 'id-token', credentials: 'alice' });
    const first = await src.get('https://clock.example');
    const before = idMints().length;
    offset += 3600_000 - 4 * 60_000; // 4 minutes left: inside the 5-minute refresh window
    const during = await src.get('https://clock.example');
    assert.equal(during.value, first.value, 'the still-valid token is handed out meanwhile');
    const refreshed = await w.gcp.waitForRequest((r) => r.path.endsWith(':generateIdToken') && idMints().indexOf(r) >= before);
    assert.equal(refreshed.idTokenAudience, 'https://clock.example');
    offset += 4 * 60_000 - 10_000; // 10 s left: too little to hand out, so the caller joins the refresh in flight
    const next = await src.get('https://clock.example');
    assert.ok(next.value !== first.value, 'a new token');
    assert.ok(next.expiresAt > first.expiresAt);
    assert.equal(idMints().length - before, 1, 'one mint: the background refresh was joined, not repeated');
    offset += 2 * 3600_000; // long expired: the caller waits for a new one
    const later = await src.get('https://clock.example');
    assert.ok(later.expiresAt > now());
    offset = 0;
  });

  test('access-token: the impersonated service account token, with the configured scopes; direct for a pool principal', async () => {
    const tokens = sources();
    const scopes = ['https://www.googleapis.com/auth/cloud-platform', 'https://www.googleapis.com/auth/userinfo.email'];
    const a = await tokens.source({ kind: 'access-token', credentials: 'alice', scopes }).get();
    assert.match(a.value, /^ya29\./);
    assert.ok(a.expiresAt > Date.now() + 3000_000);
    const b = await tokens.source({ kind: 'access-token', credentials: 'bob' }).get();
    assert.notEqual(a.value, b.value);
    assert.equal(w.gcp.requestsOf('iam').filter((r) => r.path.endsWith(':generateAccessToken')).at(-1)!.serviceAccount, w.collaborators.alice.serviceAccount);
  });

  test('attestation: a custom-audience token from the teeserver socket, with nonces', async () => {
    const tokens = sources();
    const src = tokens.source({ kind: 'attestation', nonces: ['0123456789abcdef'] });
    const t = await src.get('https://verifier.example');
    const claims = await w.key.verify(t.value, { audience: 'https://verifier.example' });
    assert.equal(claims.eat_nonce, '0123456789abcdef');
    assert.equal(claims.swname, 'CONFIDENTIAL_SPACE');
    const n = w.teeserver!.requests.length;
    await src.get('https://verifier.example');
    assert.equal(w.teeserver!.requests.length, n, 'cached');
  });

  test('a transient failure is retried with backoff; a refusal fails fast with the exit code and names what', async () => {
    const tokens = sources();
    const before = idMints().length;
    w.gcp.fault('iam', { status: 503, times: 1 });
    const t = await tokens.source({ kind: 'id-token', credentials: 'alice' }).get('https://retry.example');
    assert.ok(t.value);
    assert.equal(idMints().length - before, 2);
    w.gcp.fault('iam', { status: 403, times: 1 });
    const err = await tokens.source({ kind: 'id-token', credentials: 'alice' }).get('https://denied.example').catch((e: unknown) => e);
    assert.ok(err instanceof InitError);
    assert.equal(err.exitCode, EXIT.noPerm);
    assert.match(err.message, /id-token of credentials alice for audience https:\/\/denied\.example: permission denied/);
    // Not cached: the next get tries again (and now succeeds).
    assert.ok((await tokens.source({ kind: 'id-token', credentials: 'alice' }).get('https://denied.example')).value);
    w.gcp.clearFaults();
    assert.match(logs.text(), /retrying/);
  });

  test('a minted value that is not one printable word (it goes into a header) is refused, not handed out', async () => {
    const tokens = sources();
    w.teeserver!.fault({ status: 200, body: 'eyJ.x\r\nX-Injected: 1', times: 1 });
    const src = tokens.source({ kind: 'attestation', audience: 'https://verifier.example' });
    await assert.rejects(src.get(), /attestation for audience https:\/\/verifier\.example: the service answered a token that is not one printable word/);
    assert.match((await src.get()).value, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/, 'the next mint is fine');
    assert.deepEqual({ sources: tokens.stats().sources, cached: tokens.stats().cached }, { sources: 1, cached: 1 });
  });

  test('configs that cannot mint are refused with the reason', () => {
    const creds = credentials();
    const cases: [TokenConfig, RegExp][] = [
      [{ kind: 'id-token', credentials: 'bob' }, /credentials\.bob has no serviceAccount/],
      [{ kind: 'id-token', credentials: 'carol' }, /carol is not configured/],
      [{ kind: 'id-token' }, /needs `credentials:`/],
      [{ kind: 'access-token', credentials: 'alice', audience: 'x' }, /no audience/],
      [{ kind: 'attestation', credentials: 'alice' }, /remove `credentials:`/],
      [{ kind: 'id-token', credentials: 'alice', nonces: ['0123456789'] }, /nonces and tokenType belong to kind attestation/],
    ];
    for (const [config, why] of cases) assert.match(tokenConfigProblem(config, creds) ?? 'no problem', why, JSON.stringify(config));
    assert.equal(tokenConfigProblem({ kind: 'id-token', credentials: 'alice' }, creds), undefined);
    const tokens = sources();
    assert.throws(() => tokens.source({ kind: 'id-token', credentials: 'bob' }), (e: unknown) => e instanceof InitError && e.exitCode === EXIT.config);
  });

  test('no token in any log line, at trace level', async () => {
    const tokens = sources();
    const values = [
      (await tokens.source({ kind: 'id-token', credentials: 'alice' }).get('https://leak.example')).value,
      (await tokens.source({ kind: 'access-token', credentials: 'alice' }).get()).value,
      (await tokens.source({ kind: 'attestation' }).get('https://leak.example')).value,
    ];
    assert.ok(logs.lines.length > 0);
    for (const v of values) {
      assert.ok(!logs.text().includes(v));
      assert.ok(!logs.text().includes(v.split('.')[2] ?? v));
    }
  });
});
