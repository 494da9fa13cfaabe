// The command line of the real bundle: help, version, usage errors (exit 64, one line).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { root, runInit } from '../helpers/init.ts';

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

test('--help prints the usage on stdout, exit 0', async () => {
  const { result, code } = await runInit(['--help']);
  assert.equal(code, 0);
  assert.match(result.stdout as string, /^Usage:/);
  assert.match(result.stdout as string, /--grace-period/);
  assert.equal(result.stderr, '');
});

test('--version', async () => {
  const { result, code } = await runInit(['--version']);
  assert.equal(code, 0);
  assert.equal(result.stdout, `tee-init ${version}`);
});

for (const [args, pattern] of [
  [['--bogus', 'true'], /Unknown option '--bogus'/],
  [[], /nothing to run/],
  [['--grace-period', 'soon', 'true'], /--grace-period: "soon" is not a duration: write e\.g\. 500ms/],
  [['--log-level', 'loud', 'true'], /--log-level "loud" is not one of/],
  [['-e', '256', 'true'], /--expect-exit "256": write an exit status 0-255/],
] as const) {
  test(`usage error ${JSON.stringify(args)}: one line, exit 64, nothing started`, async () => {
    const { result, code } = await runInit([...args]);
    assert.equal(code, 64);
    const lines = (result.stderr as string).split('\n').filter(Boolean);
    assert.equal(lines.length, 1, result.stderr as string);
    assert.match(lines[0]!, /^tee-init: /);
    assert.match(lines[0]!, pattern);
    assert.equal(result.stdout, '');
  });
}

test('logs are JSON lines with the severity Cloud Logging reads', async () => {
  const { code, log } = await runInit(['--log-level', 'debug', '--', 'true']);
  assert.equal(code, 0);
  assert.ok(log.lines.length >= 3);
  for (const line of log.lines) {
    const rec = JSON.parse(line);
    assert.ok(['DEBUG', 'INFO', 'WARNING', 'ERROR'].includes(rec.severity), line);
    assert.equal(typeof rec.message, 'string');
    assert.match(rec.time, /^\d{4}-\d\d-\d\dT/);
  }
  for (const m of ['tee-init starting', 'child started', 'child exited']) assert.ok(log.find(m), m);
  assert.equal(Array.isArray(log.find('child started')!.command), true);
});

test('--log-level warn keeps info records out', async () => {
  const { code, log } = await runInit(['--log-level', 'warn', '--', 'true']);
  assert.equal(code, 0);
  assert.deepEqual(log.records.filter((r) => r.severity === 'INFO'), []);
});

test('-e / --expect-exit (tini\'s -e): the listed statuses of the program become 0, others pass through', async () => {
  assert.equal((await runInit(['-e', '3', '--', 'sh', '-c', 'exit 3'])).code, 0);
  assert.equal((await runInit(['-e', '3', '--', 'sh', '-c', 'exit 4'])).code, 4);
  // A program that ends with SIGTERM's status, listed twice with another: 143 is expected.
  const term = await runInit(['--expect-exit', '143', '-e', '2', '--', 'sh', '-c', 'kill -TERM $$']);
  assert.equal(term.code, 0);
  assert.match(term.result.stderr as string, /exit status 143 is expected \(--expect-exit\): the init exits 0/);
});
