// Fault injection on the GCP fake, seen through the real clients: what each fault looks like
// to tee-init.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { authClient, rejection, secretClient } from './clients.ts';
import { crc32c } from './secretmanager.ts';
import { startWorld, type EmulatedWorld } from './world.ts';

// Without retries the client surfaces each fault as it is; AccessSecretVersion's default retry
// (UNAVAILABLE, RESOURCE_EXHAUSTED; 2 s initial backoff) is exercised once, below.
const NO_RETRY = { retry: null } as const;
const CA = 'projects/alice-proj/secrets/ca/versions/latest';
const PSK = 'projects/alice-proj/secrets/psk/versions/latest';

describe('Secret Manager faults', () => {
  let w: EmulatedWorld;
  let sm: SecretManagerServiceClient;
  before(async () => {
    w = await startWorld({ teeserver: false });
    w.addSecret('projects/alice-proj/secrets/ca', 'a\n');
    w.addSecret('projects/alice-proj/secrets/psk', 'share');
    sm = secretClient(w.gcp.port, authClient(w.externalAccount('alice')));
    await sm.accessSecretVersion({ name: CA }); // token exchange done before the faults
  });
  after(async () => {
    await sm.close();
    await w.close();
  });

  test('latencyMs delays the answer, which is otherwise normal', async () => {
    w.gcp.fault('sm', { latencyMs: 150, times: 1 });
    const start = Date.now();
    const [res] = await sm.accessSecretVersion({ name: CA });
    assert.ok(Date.now() - start >= 150);
    assert.equal(res.payload!.data!.toString(), 'a\n');
    assert.equal(w.gcp.requestsOf('sm').at(-1)!.fault, 'latency');
  });

  test('times: the first N matching requests fail, then the API behaves', async () => {
    w.gcp.fault('sm', { status: 500, times: 2 });
    const first = await rejection(sm.accessSecretVersion({ name: CA }, NO_RETRY));
    assert.equal(first.code, 13, 'HTTP 500 → INTERNAL');
    assert.equal(first.httpStatusCode, 500);
    assert.equal(first.message, 'fault injected: 500');
    await rejection(sm.accessSecretVersion({ name: CA }, NO_RETRY));
    await sm.accessSecretVersion({ name: CA }, NO_RETRY);
    assert.deepEqual(w.gcp.requestsOf('sm').slice(-3).map((r) => r.status), [500, 500, 200]);
  });

  test('a fault for one secret leaves the others alone', async () => {
    w.gcp.fault('sm', { status: 429, times: 1 }, { secret: 'projects/alice-proj/secrets/psk' });
    await sm.accessSecretVersion({ name: CA }, NO_RETRY);
    const err = await rejection(sm.accessSecretVersion({ name: PSK }, NO_RETRY));
    assert.equal(err.code, 8, 'HTTP 429 → RESOURCE_EXHAUSTED');
    await sm.accessSecretVersion({ name: PSK }, NO_RETRY);
  });

  test('503: code 14 UNAVAILABLE with httpStatusCode 503', async () => {
    w.gcp.fault('sm', { status: 503, times: 1 });
    const err = await rejection(sm.accessSecretVersion({ name: CA }, NO_RETRY));
    assert.equal(err.constructor.name, 'GoogleError');
    assert.equal(err.code, 14);
    assert.equal(err.httpStatusCode, 503);
  });

  test("503 once is absorbed by the client's default retry", async () => {
    w.gcp.fault('sm', { status: 503, times: 1 });
    const [res] = await sm.accessSecretVersion({ name: CA });
    assert.equal(res.name, 'projects/111/secrets/ca/versions/1');
    assert.deepEqual(w.gcp.requestsOf('sm').slice(-2).map((r) => r.status), [503, 200]);
  });

  test('a non-JSON error body (a proxy page): still a GoogleError with the status mapped', async () => {
    w.gcp.fault('sm', { status: 502, body: '<html><title>502 Bad Gateway</title></html>', times: 1 });
    const err = await rejection(sm.accessSecretVersion({ name: CA }, NO_RETRY));
    assert.equal(err.constructor.name, 'GoogleError');
    assert.equal(err.code, 13, 'other 5xx → INTERNAL');
    assert.equal(err.httpStatusCode, 502);
    assert.match(err.message, /could not be decoded: the response body is not JSON: <html>/);
  });

  test('corruptCrc: the payload no longer matches its dataCrc32c', async () => {
    w.gcp.fault('sm', { corruptCrc: true, times: 1 });
    const [res] = await sm.accessSecretVersion({ name: CA });
    assert.equal(res.payload!.data!.toString(), 'a\n');
    assert.notEqual(BigInt(res.payload!.dataCrc32c as string), BigInt(crc32c(res.payload!.data as Buffer)));
    assert.equal(w.gcp.requestsOf('sm').at(-1)!.fault, 'corruptCrc');
  });

  test('dropConnection: code 14, the GaxiosError (ECONNRESET, socket hang up) as cause', async () => {
    w.gcp.fault('sm', { dropConnection: true, times: 1 });
    const err = await rejection(sm.accessSecretVersion({ name: CA }, NO_RETRY));
    assert.equal(err.constructor.name, 'GoogleError');
    assert.equal(err.code, 14);
    assert.equal(err.httpStatusCode, undefined);
    assert.equal((err.cause as { code?: string }).code, 'ECONNRESET');
    const last = w.gcp.requestsOf('sm').at(-1)!;
    assert.equal(last.fault, 'drop');
    assert.equal(last.status, undefined);
  });

  test('hang with a client timeout: code 4 DEADLINE_EXCEEDED', async () => {
    w.gcp.fault('sm', { hang: true, times: 1 });
    const err = await rejection(sm.accessSecretVersion({ name: CA }, { timeout: 200 }));
    assert.equal(err.constructor.name, 'GoogleError');
    assert.equal(err.code, 4);
    assert.equal(err.message, 'Deadline exceeded: accessSecretVersion did not respond within 200 milliseconds.');
  });

  test('faults can be cleared', async () => {
    w.gcp.fault('sm', { status: 500 });
    w.gcp.clearFaults('sm');
    await sm.accessSecretVersion({ name: CA }, NO_RETRY);
  });
});

describe('hangs and close()', () => {
  test('close() ends a hung Secret Manager request at once; the client sees code 14', async () => {
    const w = await startWorld({ teeserver: false });
    w.addSecret('projects/bob-proj/secrets/psk', 'x');
    const sm = secretClient(w.gcp.port, authClient(w.externalAccount('bob')));
    try {
      w.gcp.fault('sm', { hang: true });
      const pending = rejection(sm.accessSecretVersion({ name: 'projects/bob-proj/secrets/psk/versions/1' }, NO_RETRY));
      await w.gcp.waitForRequest((r) => r.api === 'sm' && r.fault === 'hang');
      await w.gcp.close();
      const err = await pending;
      assert.equal(err.code, 14);
      assert.equal((err.cause as { code?: string }).code, 'ECONNRESET');
    } finally {
      await sm.close();
      await w.close();
    }
  });

  test("an STS hang is not bounded by the Secret Manager call's timeout; close() releases it", async () => {
    const w = await startWorld({ teeserver: false });
    w.addSecret('projects/bob-proj/secrets/psk', 'x');
    const sm = secretClient(w.gcp.port, authClient(w.externalAccount('bob')));
    try {
      w.gcp.fault('sts', { hang: true });
      let settled = false;
      const pending = rejection(sm.accessSecretVersion({ name: 'projects/bob-proj/secrets/psk/versions/1' }, { timeout: 100 })).finally(
        () => (settled = true),
      );
      await w.gcp.waitForRequest((r) => r.api === 'sts' && r.fault === 'hang');
      // Well past the call's 100 ms: the token exchange runs outside the deadline gax arms.
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(settled, false, 'the call is still waiting for STS');
      await w.gcp.close();
      const err = await pending;
      assert.equal(err.code, 4, 'reported as the deadline once the socket closes');
    } finally {
      await sm.close();
      await w.close();
    }
  });
});
