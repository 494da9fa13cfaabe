import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InitError } from '../../src/lib/errors.ts';
import { classify, UnusableAnswer } from '../../src/lib/classify.ts';
import { retrying, type RetryPolicy } from '../../src/lib/retry.ts';
import { memoryLog } from '../helpers/log.ts';

const policy = (over: Partial<RetryPolicy> = {}): RetryPolicy => ({
  deadline: Date.now() + 2000, deadlineMs: 2000, initialBackoffMs: 1, maxBackoffMs: 4, attemptTimeoutMs: 500, ...over,
});
const never = new AbortController().signal;

test('classify: gRPC codes, HTTP statuses, OAuth errors, socket errors', () => {
  const fail = (e: unknown, exit: number) => assert.deepEqual([classify(e).retry, (classify(e) as { exit?: number }).exit], [false, exit], JSON.stringify(e));
  const retry = (e: unknown) => assert.equal(classify(e).retry, true, JSON.stringify(e));
  fail({ code: 5 }, 78);
  fail({ code: 7 }, 77);
  fail({ code: 16 }, 77);
  fail({ code: 9 }, 78);
  retry({ code: 14 });
  retry({ code: 13, httpStatusCode: 503 });
  retry({ code: 8 });
  fail({ response: { status: 403 } }, 77);
  fail({ response: { status: 404 } }, 78);
  fail({ response: { status: 400, data: { error: 'invalid_grant' } } }, 77);
  fail({ response: { status: 400, data: { error: 'invalid_target' } } }, 78);
  retry({ response: { status: 429 } });
  retry({ status: 503 });
  retry({ code: 'ECONNREFUSED' });
  retry({ message: 'fetch failed', cause: { code: 'ECONNRESET' } });
  fail({ message: 'x', cause: { code: 7 } }, 77);
  fail(new InitError(65, 'crc'), 65);
  assert.match(classify({ code: 13, httpStatusCode: 502 }).why, /HTTP 502/);
  // A service that answers without a token is its fault: retried, never "internal error".
  assert.deepEqual(classify(new UnusableAnswer('IAM answered without a token')), { retry: true, why: 'unusable answer' });
  assert.equal((classify(new TypeError('x')) as { exit?: number }).exit, 70, 'a TypeError is ours: not retried');
});

test('retries what may pass, until it does', async () => {
  const { log, records } = memoryLog();
  let n = 0;
  const v = await retrying('secret x', async () => {
    if (++n < 3) throw Object.assign(new Error('unavailable'), { code: 14 });
    return 'ok';
  }, policy(), never, log);
  assert.equal(v, 'ok');
  assert.equal(n, 3);
  assert.equal(records().filter((r) => /retrying/.test(r.message as string)).length, 2);
});

test('stops at once on what will not pass, naming the thing: permission -> 77', async () => {
  const { log } = memoryLog();
  let n = 0;
  await assert.rejects(
    retrying('secret key (projects/p/secrets/k/versions/1, read as alice)', async () => {
      n++;
      throw Object.assign(new Error('Permission denied on secret'), { code: 7 });
    }, policy(), never, log),
    (e: unknown) => e instanceof InitError && e.exitCode === 77 && /^secret key \(projects\/p\/secrets\/k\/versions\/1, read as alice\): permission denied: Permission denied on secret$/.test(e.message),
  );
  assert.equal(n, 1);
});

test('past the deadline: 69, with the last reason', async () => {
  const { log } = memoryLog();
  await assert.rejects(
    retrying('secret x', async () => {
      throw Object.assign(new Error('503 Service Unavailable'), { code: 14 });
    }, policy({ deadline: Date.now() + 50, deadlineMs: 50 }), never, log),
    (e: unknown) => e instanceof InitError && e.exitCode === 69 && /still unavailable after .* unavailable: 503 Service Unavailable/.test(e.message),
  );
});

test('a hung attempt is cut by the attempt timeout and retried', async () => {
  const { log } = memoryLog();
  let n = 0;
  const v = await retrying('secret x', () => (++n === 1 ? new Promise<string>(() => {}) : Promise.resolve('second')), policy({ attemptTimeoutMs: 30 }), never, log);
  assert.equal(v, 'second');
});

test('an abort (SIGTERM during bootstrap) ends the wait with its reason', async () => {
  const { log } = memoryLog();
  const ac = new AbortController();
  const reason = new Error('aborted by SIGTERM');
  const p = retrying('secret x', async () => {
    throw Object.assign(new Error('unavailable'), { code: 14 });
  }, policy({ initialBackoffMs: 10_000, maxBackoffMs: 10_000, deadline: Date.now() + 60_000 }), ac.signal, log);
  setImmediate(() => ac.abort(reason));
  await assert.rejects(p, (e) => e === reason);
});

test('a programming error is not retried: 70', () => {
  const v = classify(new TypeError("Cannot read properties of null (reading 'x')"));
  assert.deepEqual([v.retry, (v as { exit?: number }).exit], [false, 70]);
  assert.equal(classify(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } })).retry, true);
});

test('a Google name that cannot be resolved is explained once (outside Google Cloud, the default endpoints), then retried as before', async () => {
  const { log, records } = memoryLog();
  const dns = () => Object.assign(new Error('getaddrinfo ENOTFOUND sts.googleapis.com'), { code: 'ENOTFOUND', hostname: 'sts.googleapis.com' });
  // As google-auth-library wraps it: the DNS error is the cause.
  const wrapped = () => Object.assign(new Error('request to https://sts.googleapis.com/v1/token failed'), { cause: dns() });
  let n = 0;
  await assert.rejects(retrying('identity alice', async () => {
    n++;
    throw n % 2 ? dns() : wrapped();
  }, policy({ deadline: Date.now() + 300, deadlineMs: 300 }), never, log), (err: InitError) => err.exitCode === 69);
  assert.ok(n >= 3, `${n} attempts`);
  const hints = records().filter((r) => String(r.message).includes('cannot be resolved'));
  assert.equal(hints.length, 1, 'said once, not at every retry');
  assert.match(String(hints[0]!.message), /^identity alice: sts\.googleapis\.com cannot be resolved: outside Google Cloud the default endpoints are unreachable; point endpoints: at an emulator \(npm run serve-world prints the block to paste\)$/);
  // Another host, or another error: no such hint.
  const other = await retrying('x', async () => 1, policy(), never, log);
  assert.equal(other, 1);
  let m = 0;
  const quiet = memoryLog();
  await assert.rejects(retrying('secret y', async () => {
    m++;
    throw Object.assign(new Error('getaddrinfo ENOTFOUND sm.example.internal'), { code: 'ENOTFOUND', hostname: 'sm.example.internal' });
  }, policy({ deadline: Date.now() + 100, deadlineMs: 100 }), never, quiet.log));
  assert.equal(quiet.records().filter((r) => String(r.message).includes('cannot be resolved')).length, 0);
  assert.ok(m >= 1);
});
