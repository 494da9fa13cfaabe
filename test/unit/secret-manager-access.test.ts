// The gcp source's one request (GET /v1/{name}:access through the identity's google-auth-library
// client) against the loopback Secret Manager fake: what it returns, and how each failure is
// classified (src/lib/classify.ts) — the verdicts google-gax's GoogleError used to give.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { classify, UnusableAnswer } from '../../src/lib/classify.ts';
import { EXIT } from '../../src/lib/exit-codes.ts';
import { crc32cMatches } from '../../src/secrets/crc32c.ts';
import { SecretManagerAccess } from '../../src/secrets/sources/gcp.ts';
import type { Identity } from '../../src/credentials/identities.ts';
import { authClient, closedPort, rejection } from '../fakes/clients.ts';
import { startWorld, type EmulatedWorld } from '../fakes/world.ts';

const CA = 'projects/alice-proj/secrets/ca/versions/1';

describe('Secret Manager access (REST, no client library)', () => {
  let w: EmulatedWorld;
  let access: SecretManagerAccess;
  let alice: Identity;
  let bob: Identity;
  before(async () => {
    w = await startWorld({ teeserver: false });
    w.addSecret('projects/alice-proj/secrets/ca', 'a\n');
    w.addSecret('projects/alice-proj/secrets/key', [{ data: 'v1' }, { data: 'v2', state: 'DISABLED' }]);
    w.addSecret('projects/alice-proj/secrets/nocrc', [{ data: 'x', omitCrc32c: true }]);
    w.addSecret('projects/alice-proj/secrets/regional', 'eu only', { location: 'europe-west4' });
    w.addSecret('projects/bob-proj/secrets/psk', Buffer.from([0, 1, 2, 255]));
    access = new SecretManagerAccess(`http://127.0.0.1:${w.gcp.port}`);
    alice = { name: 'alice', label: 'alice', client: authClient(w.externalAccount('alice')) };
    bob = { name: 'bob', label: 'bob', client: authClient(w.externalAccount('bob')) };
  });
  after(() => w.close());

  test("reads a version with the identity's bearer: data, the resolved name, the CRC32C", async () => {
    const v = await access.access(alice, 'projects/alice-proj/secrets/ca/versions/latest', 10_000);
    assert.equal(v.data.toString(), 'a\n');
    assert.equal(v.name, 'projects/111/secrets/ca/versions/1');
    assert.equal(v.crc32c, '163439259');
    assert.ok(crc32cMatches(v.data, v.crc32c));
    const last = w.gcp.requestsOf('sm').at(-1)!;
    assert.equal(last.path, '/v1/projects/alice-proj/secrets/ca/versions/latest:access');
    assert.equal(last.principal, `serviceAccount:${w.collaborators.alice.serviceAccount}`);
  });

  test('binary payloads come back byte for byte; a regional name is read as such', async () => {
    assert.deepEqual([...(await access.access(bob, 'projects/bob-proj/secrets/psk/versions/1', 10_000)).data], [0, 1, 2, 255]);
    const eu = await access.access(alice, 'projects/alice-proj/locations/europe-west4/secrets/regional/versions/latest', 10_000);
    assert.equal(eu.data.toString(), 'eu only');
  });

  test('an absent checksum stays absent (not "0"); a corrupted one does not match', async () => {
    assert.equal((await access.access(alice, 'projects/alice-proj/secrets/nocrc/versions/1', 10_000)).crc32c, undefined);
    w.gcp.fault('sm', { corruptCrc: true, times: 1 });
    const v = await access.access(alice, CA, 10_000);
    assert.equal(v.data.toString(), 'a\n');
    assert.equal(crc32cMatches(v.data, v.crc32c!), false);
  });

  test('NOT_FOUND (404): code 5, stop with the config status, the Google message kept', async () => {
    const err = await rejection(access.access(alice, 'projects/alice-proj/secrets/ca/versions/7', 10_000));
    assert.equal(err.code, 5);
    assert.equal(err.httpStatusCode, 404);
    assert.equal(err.message, 'Secret Version [projects/111/secrets/ca/versions/7] not found.');
    assert.deepEqual(classify(err), { retry: false, exit: EXIT.config, why: 'not found (HTTP 404)' });
  });

  test('PERMISSION_DENIED (403): the no-permission status', async () => {
    const err = await rejection(access.access(bob, CA, 10_000));
    assert.equal(err.code, 7);
    assert.deepEqual(classify(err), { retry: false, exit: EXIT.noPerm, why: 'permission denied (HTTP 403)' });
  });

  test('a disabled version (FAILED_PRECONDITION, HTTP 400) is "not usable", not "bad request"', async () => {
    const err = await rejection(access.access(alice, 'projects/alice-proj/secrets/key/versions/2', 10_000));
    assert.equal(err.code, 9);
    assert.match(err.message, /is in DISABLED state/);
    assert.deepEqual(classify(err), { retry: false, exit: EXIT.config, why: 'not usable (disabled or destroyed) (HTTP 400)' });
  });

  test('503 and a proxy page (502, not JSON) are retried', async () => {
    w.gcp.fault('sm', { status: 503, times: 1 });
    const unavailable = classify(await rejection(access.access(alice, CA, 10_000)));
    assert.deepEqual(unavailable, { retry: true, why: 'unavailable (HTTP 503)' });
    w.gcp.fault('sm', { status: 502, body: '<html><title>502 Bad Gateway</title></html>', times: 1 });
    assert.deepEqual(classify(await rejection(access.access(alice, CA, 10_000))), { retry: true, why: 'HTTP 502' });
  });

  test('a 200 whose body is not a version (or names it with control characters) is an unusable answer (retried), not an internal error', async () => {
    const hostileName = { name: 'projects/111/secrets/ca/versions/1\r\nX-Evil: 1', payload: { data: 'YQo=' } };
    for (const body of ['<html>hello</html>', { payload: { data: 42 } }, [1, 2], hostileName]) {
      w.gcp.fault('sm', { status: 200, body, times: 1 });
      const err = await rejection(access.access(alice, CA, 10_000));
      assert.ok(err instanceof UnusableAnswer, String(err));
      assert.equal(classify(err).retry, true);
    }
  });

  test('a hang ends at the attempt timeout as DEADLINE_EXCEEDED (retried), the request aborted', async () => {
    w.gcp.fault('sm', { hang: true, times: 1 });
    const err = await rejection(access.access(alice, CA, 300));
    assert.equal(err.code, 4);
    assert.deepEqual(classify(err), { retry: true, why: 'deadline exceeded' });
  });

  test('connection refused: a network error, retried', async () => {
    const closed = new SecretManagerAccess(`http://127.0.0.1:${await closedPort()}`);
    const verdict = classify(await rejection(closed.access(alice, CA, 10_000)));
    assert.deepEqual(verdict, { retry: true, why: 'network error ECONNREFUSED' });
  });

  test("an STS refusal inside a read is the token exchange's own verdict (refused, no permission)", async () => {
    await w.writeToken({ dbgstat: 'enabled' });
    try {
      const fresh: Identity = { name: 'bob', label: 'bob', client: authClient(w.externalAccount('bob')) };
      const verdict = classify(await rejection(access.access(fresh, 'projects/bob-proj/secrets/psk/versions/1', 10_000)));
      assert.deepEqual(verdict, { retry: false, exit: EXIT.noPerm, why: 'refused (invalid_grant)' });
    } finally {
      await w.writeToken();
    }
  });
});
