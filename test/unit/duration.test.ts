import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkDuration, formatDuration, MAX_DURATION_MS, parseDuration } from '../../src/lib/duration.ts';

test('durations', () => {
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('5'), 5000, 'a bare number is seconds');
  assert.equal(parseDuration(' 3s '), 3000);
  for (const bad of ['', 's', '10x', '-1s', '10 s', '1s2', 'ms']) assert.equal(parseDuration(bad), undefined, bad);
  assert.equal(formatDuration(10_000), '10s');
  assert.equal(formatDuration(250), '250ms');
  assert.deepEqual([60_000, 90_000, 5_400_000, 3_600_000, 86_400_000, 0].map(formatDuration), ['1m', '90s', '90m', '1h', '24h', '0s']);
});

test('one rule for every duration: Node timer limit, minimum, and what to write instead', () => {
  assert.deepEqual(checkDuration('10s'), { ms: 10_000 });
  assert.deepEqual(checkDuration(1.5), { ms: 1500 }, 'a number is seconds');
  assert.deepEqual(checkDuration('596h'), { ms: 596 * 3_600_000 });
  assert.deepEqual(checkDuration(`${MAX_DURATION_MS}ms`), { ms: MAX_DURATION_MS });
  assert.deepEqual(checkDuration('0s'), { ms: 0 });
  const problem = (v: unknown, min = 0) => checkDuration(v, min).problem;
  assert.match(problem(`${MAX_DURATION_MS + 1}ms`)!, /is longer than the longest timer Node\.js can run \(2147483647 ms, about 24\.8 days\): write at most 596h/);
  for (const long of ['1000h', '597h', '9'.repeat(400), `${'9'.repeat(400)}ms`, 1e300, Infinity]) assert.match(problem(long)!, /longer than the longest timer/, String(long).slice(0, 20));
  for (const bad of ['1e400', '-1s', 'NaN', '', 'soon', '1 s', true, null, [], {}, NaN]) assert.match(problem(bad)!, /is not a duration: write e\.g\. 500ms, 30s/, String(bad));
  assert.match(problem(-1)!, /^-1 is negative: write a duration of at least 0s$/);
  assert.match(problem('0s', 1)!, /^"0s" is too short: write at least 1ms$/);
  assert.match(problem('0.0001s', 1)!, /too short/, 'rounds to 0 ms');
  assert.equal(parseDuration('9'.repeat(400)), undefined, 'parseDuration never returns Infinity');
  assert.match(problem('x'.repeat(1000))!, /^"x{37}\.\.\." is not a duration/, 'long input shortened');
});
