// Pure parts of the run stage: the start order, the metrics text, stop-signal names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InitError } from '../../src/lib/errors.ts';
import { metricsText } from '../../src/run/metrics.ts';
import { startOrder } from '../../src/config/order.ts';
import type { UnitStatus } from '../../src/run/types.ts';
import { parseStopSignal } from '../../src/lib/signals.ts';

const node = (name: string, ...after: string[]) => ({ name, after, field: `processes.${name}.after` });

test('start order: dependencies first, the file order otherwise', () => {
  assert.deepEqual(startOrder([node('envoy', 'backend'), node('backend', 'migrate'), node('migrate'), node('metrics')]), ['migrate', 'backend', 'envoy', 'metrics']);
  assert.deepEqual(startOrder([node('a'), node('b'), node('c', 'a', 'b')]), ['a', 'b', 'c']);
});

test('start order: a longer cycle is named whole', () => {
  assert.throws(() => startOrder([node('a', 'c'), node('b', 'a'), node('c', 'b')]), (e: unknown) =>
    e instanceof InitError && e.exitCode === 78 && e.message === 'processes.a.after: a cycle in after: a -> c -> b -> a (each waits for the next to be ready)');
});

test('metrics: label values escaped, one HELP/TYPE per family, counters typed', () => {
  const u: UnitStatus = { name: 'we"ird\\name', kind: 'listener', state: 'ready', ready: true, pid: undefined, restarts: 0, exitStatus: undefined, stats: { connections_total: 3, connections_active: 1 } };
  const text = metricsText([u], 1_000_000);
  assert.match(text, /^tee_init_unit_ready\{unit="we\\"ird\\\\name",kind="listener"\} 1$/m);
  assert.match(text, /^# TYPE tee_init_listener_connections_total counter$/m);
  assert.match(text, /^# TYPE tee_init_listener_connections_active gauge$/m);
  assert.equal(text.match(/^# HELP tee_init_unit_state /gm)!.length, 1);
  assert.doesNotMatch(text, /tee_init_unit_restarts_total/, 'a listener has no restarts');
  assert.ok(text.endsWith('\n'));
});

test('stop signals: names with or without SIG, numbers; not SIGSTOP or SIGCHLD', () => {
  assert.equal(parseStopSignal('SIGINT'), 'SIGINT');
  assert.equal(parseStopSignal('int'), 'SIGINT');
  assert.equal(parseStopSignal('3'), 'SIGQUIT');
  assert.equal(parseStopSignal('SIGKILL'), 'SIGKILL');
  for (const bad of ['SIGSTOP', 'SIGCHLD', 'SIGSEGV', 'nope', '99']) assert.equal(parseStopSignal(bad), undefined, bad);
});
