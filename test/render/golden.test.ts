// Golden files: each preset's rendered plan (argv, env, files with content) for a fixed input.
// A change in output shows as a diff in review. Regenerate with
//   UPDATE_GOLDEN=1 node --test test/render/golden.test.ts
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { describePlan } from '../../src/render/index.ts';
import { CASES } from './cases.ts';

const dir = join(import.meta.dirname, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

for (const [name, input] of Object.entries(CASES)) {
  test(`golden: ${name}`, () => {
    const file = join(dir, `${name}.yaml`);
    const plan = describePlan(input);
    if (update) writeFileSync(file, plan);
    assert.ok(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 to create it`);
    assert.equal(plan, readFileSync(file, 'utf8'), `${name} differs from ${file} (UPDATE_GOLDEN=1 to accept)`);
  });
}

test('render is deterministic and does not modify its input', () => {
  for (const input of Object.values(CASES)) {
    const before = structuredClone(input);
    assert.equal(describePlan(input), describePlan(input));
    assert.deepEqual(input, before);
  }
});
