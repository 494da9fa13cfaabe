// The reaper under a program that forks thousands of short-lived orphans: each is reaped, and the
// log gets one line with the count, not one line per orphan (issue 18: a flood on the console).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Libc } from '../../src/lib/libc.ts';
import { Reaper } from '../../src/supervise/reap.ts';
import { memoryLog } from '../helpers/log.ts';

test('5,000 orphans reaped in one pass: 5,000 waitpid calls, one debug line with the count', () => {
  // Pids far above any real one: the fake libc answers for them, nothing is signalled or waited for.
  const exited = Array.from({ length: 5_000 }, (_, i) => 10_000_000 + i);
  const reaped: number[] = [];
  const libc: Libc = {
    peekExited: () => exited[0] ?? 0,
    reap: (pid) => (exited.shift() === pid ? (reaped.push(pid), true) : false),
    setSubreaper() {},
    unblockSignal() {},
    lockExclusive: () => true,
  };
  const { log, messages } = memoryLog('debug');
  const reaper = new Reaper(libc, log, () => new Set());
  reaper.reap();
  reaper.report();
  assert.equal(reaped.length, 5_000);
  assert.deepEqual(messages(), ['reaped 5000 orphaned processes']);
  reaper.report();
  assert.equal(messages().length, 1, 'nothing new, nothing said');
});
