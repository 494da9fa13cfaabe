import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { GC_TRIGGER_FLAGS, tuneGcForDataPlane } from '../../src/proxy/gc-tuning.ts';

test('the GC trigger flags are set only on the V8 they were measured on', () => {
  assert.equal(tuneGcForDataPlane('14.1.146.11-node.31'), false);
  assert.equal(tuneGcForDataPlane('12.4.254.21-node.33'), false);
  assert.equal(tuneGcForDataPlane('13.6.233.17-node.53'), true);
  assert.equal(tuneGcForDataPlane('13.6.233.17-node.53'), true, 'twice is harmless');
});

test("where they are set, this node's V8 knows them (an unknown flag would print an error at start)", (t) => {
  if (!tuneGcForDataPlane()) return t.skip(`V8 ${process.versions.v8}: the flags are not set here; re-measure with bench/tls-cpu.ts`);
  const r = spawnSync(process.execPath, [...GC_TRIGGER_FLAGS, '-e', ''], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
});
