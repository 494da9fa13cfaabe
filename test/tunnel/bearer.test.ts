// Server mode's bearer check, with real JWTs from a real TokenSources (ES256, JWKS on loopback
// http) put on the wire by the tunnel client: accepted when right; missing, expired, wrong
// audience, wrong issuer, unknown signer and a caller not on the list refused with 401.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { tunnelType } from '../../src/proxy/types/tunnel/type.ts';
import { congratsServer, exchange, jwtMinter, type Minter, outcome, startTunnel } from './peers.ts';

const GREETING = 'Congrats! You have connected through the tunnel.\n';

/** A server whose audience is its own URL (as Cloud Run's), and a client minting with `minter`. */
async function pair(t: TestContext, bearer: Record<string, unknown> = {}, withToken = true, minter?: Minter) {
  const backend = await congratsServer(t);
  const m = minter ?? (await jwtMinter(t));
  // Port first, so the audience can name it.
  const probe = await startTunnel(t, 'probe', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true });
  const port = probe.port;
  await probe.handle.close();
  const url = `http://127.0.0.1:${port}`;
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: `127.0.0.1:${port}`, connect: `127.0.0.1:${backend.port}`, h2c: true,
    bearer: { audience: url, jwks: m.jwksUrl, ...bearer },
  });
  const client = await startTunnel(t, 'out', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `${url}/`, ...(withToken ? { token: { kind: 'id-token', credentials: 'alice' } } : {}),
  }, undefined, m);
  return { backend, minter: m, server, client };
}

async function refused(p: Awaited<ReturnType<typeof pair>>, reason: RegExp): Promise<void> {
  const r = await outcome(p.client.port);
  assert.equal(r.data, '');
  assert.equal(p.backend.accepted, 0, 'the program never saw the connection');
  assert.deepEqual(p.client.log.records().filter((l) => l.status !== undefined).map((l) => l.status), [401]);
  assert.equal(p.server.handle.stats().auth_failures_total, 1);
  const lines = p.server.log.records().filter((l) => l.message === 'tunnel: bearer token refused');
  assert.equal(lines.length, 1);
  assert.match(String(lines[0]!.reason), reason);
  for (const token of p.minter.issued) {
    assert.ok(!p.server.log.text().includes(token.split('.')[2]!), 'no token in the server log');
    assert.ok(!p.client.log.text().includes(token.split('.')[2]!), 'no token in the client log');
  }
}

test('bearer: a valid ID token for the URL is accepted (audience defaults to the URL origin)', async (t) => {
  const p = await pair(t, { emails: ['caller@alice.iam.gserviceaccount.com'] });
  assert.equal(await exchange(p.client.port, 'ok\n'), `${GREETING}ok\n`);
  assert.equal(await exchange(p.client.port, 'again\n'), `${GREETING}again\n`);
  assert.equal(p.minter.gets, 2, 'one get per stream (the token source caches)');
  assert.equal(p.server.handle.stats().auth_failures_total, 0);
});

test('bearer: missing token refused', async (t) => {
  await refused(await pair(t, {}, false), /no Authorization header/);
});

test('bearer: expired token refused', async (t) => {
  const m = await jwtMinter(t);
  m.claims.ttlSeconds = -120; // past the 30 s clock tolerance
  await refused(await pair(t, {}, true, m), /ERR_JWT_EXPIRED/);
});

test('bearer: wrong audience refused', async (t) => {
  const m = await jwtMinter(t);
  m.claims.aud = 'https://some-other-service.a.run.app';
  await refused(await pair(t, {}, true, m), /aud/);
});

test('bearer: wrong issuer refused', async (t) => {
  const m = await jwtMinter(t);
  m.claims.iss = 'https://evil.example';
  await refused(await pair(t, {}, true, m), /iss/);
});

test('bearer: a token signed by a key not in the JWKS refused', async (t) => {
  const p = await pair(t);
  const stranger = await jwtMinter(t);
  // Same claims, another key (same kid): the server's JWKS does not verify it.
  const client = await startTunnel(t, 'stranger', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${p.server.port}/`, token: { kind: 'id-token', credentials: 'alice' },
  }, undefined, stranger);
  assert.equal((await outcome(client.port)).data, '');
  assert.equal(p.backend.accepted, 0);
  assert.match(String(p.server.log.records().find((l) => l.message === 'tunnel: bearer token refused')?.reason), /signature/i);
});

test('bearer: a caller not in bearer.emails refused', async (t) => {
  await refused(await pair(t, { emails: ['someone-else@bob.iam.gserviceaccount.com'] }), /not in bearer\.emails/);
});

test('bearer: config needs an audience; jwks must be https or loopback http', () => {
  const config = (bearer: Record<string, unknown>) => ({ type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: '127.0.0.1:1', h2c: true, bearer });
  const issues = (bearer: Record<string, unknown>) => JSON.stringify(tunnelType.schema.safeParse(config(bearer)).error?.issues);
  assert.match(issues({ jwks: 'https://example.com/certs' }), /audience/);
  assert.match(issues({ audience: 'https://x', jwks: 'http://jwks.example/certs' }), /plain http is allowed only to loopback/);
  assert.equal(tunnelType.schema.safeParse(config({ audience: 'https://x' })).success, true, 'Google defaults for issuer and jwks');
});

test('bearer: a JWKS that cannot be read is named with the network error (not "fetch failed")', async (t) => {
  const { freePort } = await import('../helpers/net.ts');
  const dead = `http://127.0.0.1:${await freePort()}/certs`; // nothing listens there
  await refused(await pair(t, { jwks: dead }), new RegExp(`^cannot read the JWKS ${dead.replace(/[./]/g, '\\$&')} \\(bearer\\.jwks\\): ECONNREFUSED$`));
});
