import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '../../src/duration.ts';

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
});
