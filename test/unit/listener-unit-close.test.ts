// The init's stop must not hang on a listener whose close() never settles (a socket that never
// reports 'close': seen once under heavy load with worker threads, SIGTERM then hung for minutes).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ListenerUnit } from '../../src/run/listener-unit.ts';
import { memoryLog } from '../helpers/log.ts';

test('stop() goes on after the close deadline, with one warning naming the listener', async () => {
  const { log, messages } = memoryLog();
  let closeCalls = 0;
  const unit = new ListenerUnit({
    kind: 'listener', name: 'listeners.stuck', after: [], secrets: [], closeDeadlineMs: 200,
    start: async () => ({
      address: { host: '127.0.0.1', port: 1 },
      stats: () => ({}),
      reload: async () => {},
      close: () => (closeCalls++, new Promise<void>(() => {})), // never settles
    }),
  }, log);
  await unit.start();
  await unit.stop();
  assert.equal(closeCalls, 1);
  assert.deepEqual(await unit.ended, { status: 0, decides: false });
  assert.ok(messages().some((m) => m.startsWith('listeners.stuck: not closed within 200 ms')), messages().join('\n'));
});

test('a close that settles in time is logged as closed, no warning', async () => {
  const { log, messages } = memoryLog();
  const unit = new ListenerUnit({
    kind: 'listener', name: 'listeners.fine', after: [], secrets: [], closeDeadlineMs: 60_000,
    start: async () => ({ address: { host: '127.0.0.1', port: 1 }, stats: () => ({}), reload: async () => {}, close: async () => {} }),
  }, log);
  await unit.start();
  await unit.stop();
  assert.ok(messages().includes('listeners.fine closed'), messages().join('\n'));
  assert.ok(!messages().some((m) => m.includes('not closed within')));
});
