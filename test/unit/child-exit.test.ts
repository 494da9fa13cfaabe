// The last resort of "nothing the init starts outlives it": a process that exits (process.exit,
// as a bug that skipped the stop would) with a Child still running SIGKILLs it on its way out.
// Real processes: a Node process using src/supervise/child.ts, a detached sleep as its child.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { processState } from '../../src/supervise/proc.ts';
import { root } from '../helpers/init.ts';

const script = (signalGroup: boolean) => `
import { Child } from ${JSON.stringify(join(root, 'src/supervise/child.ts'))};
const log = { warn() {}, debug() {}, info() {} };
const child = await Child.spawn({ argv: ['sh', '-c', 'sleep 1000 & exec sleep 1000'], env: process.env }, { log, signalGroup: ${signalGroup}, output: 'ignore' });
console.log(child.pid);
process.exit(3);`;

for (const signalGroup of [false, true]) {
  test(`an exit with a child still running SIGKILLs it${signalGroup ? ' (its whole group, with --signal-group)' : ''}`, (t) => {
    let pid = 0;
    try {
      execFileSync(process.execPath, ['--input-type=module', '-e', script(signalGroup)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      assert.fail('exit 3 expected');
    } catch (err) {
      const e = err as { status: number; stdout: string };
      assert.equal(e.status, 3);
      pid = Number(e.stdout.trim());
    }
    assert.ok(pid > 0);
    t.after(() => {
      try {
        process.kill(-pid, 'SIGKILL'); // whatever of the group this test started is left (the background sleep without --signal-group)
      } catch {
        // gone
      }
    });
    // Killed, not yet reaped by whoever inherited it: a zombie, or gone.
    const state = processState(pid);
    assert.ok(state === undefined || state === 'Z', `the child ${pid} outlived its parent (state ${state})`);
    if (signalGroup) {
      const left = execFileSync('sh', ['-c', `pgrep -g ${pid} || true`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number).filter((p) => processState(p) !== 'Z');
      assert.deepEqual(left, [], 'nothing of its group is left');
    }
  });
}
