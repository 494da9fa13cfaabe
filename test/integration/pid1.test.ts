// tee-init as PID 1 of a real PID namespace, and as a subreaper (issue 2, point 5).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { processState } from '../../src/supervise/proc.ts';
import { bundle, node, runInit, startCommand, startInit } from '../helpers/init.ts';
import { orphansScript } from '../helpers/orphans.ts';
import { isRoot, needs } from '../helpers/tools.ts';
import { unit } from '../helpers/units.ts';

const ORPHANS = orphansScript(100);
// A Node PID 1 that runs its argv and waits for that child only, as Node does: it reaps no orphan.
const PLAIN_PID1 = `require('child_process').spawn(process.argv[1], process.argv.slice(2), { stdio: 'inherit' }).on('exit', (c) => process.exit(c));`;

function inNamespace(t: TestContext): boolean {
  if (!needs(t, 'unshare', 'apt-get install util-linux')) return false;
  if (!isRoot) {
    if (process.env.CI) throw new Error('PID-namespace tests need root in CI');
    t.skip('needs root for unshare --pid');
    return false;
  }
  return true;
}

const UNSHARE = ['unshare', '--pid', '--fork', '--mount-proc'];

describe('as PID 1 in a PID namespace', () => {
  test('100 orphans leave 0 zombies, and the child keeps its own exit status', async (t) => {
    if (!inNamespace(t)) return;
    const { proc, log } = startCommand([...UNSHARE, node, '--disable-sigusr1', bundle, '--', 'sh', '-c', ORPHANS]);
    const result = await proc;
    assert.equal(result.stdout, 'zombies=0 sleeps=0', log.text);
    assert.equal(result.exitCode, 7, 'reaping orphans must not steal the child\'s status');
    assert.equal(log.find('tee-init starting')!.pid, 1);
    assert.equal(log.find('not PID 1'), undefined);
  });

  test('control: a Node PID 1 that does not reap leaves the zombies behind', async (t) => {
    if (!inNamespace(t)) return;
    const { proc } = startCommand([...UNSHARE, node, '-e', PLAIN_PID1, 'sh', '-c', ORPHANS]);
    const result = await proc;
    assert.equal(result.stdout, 'zombies=100 sleeps=100');
  });

  test('SIGTERM from outside the namespace reaches the child through the init', async (t) => {
    if (!inNamespace(t)) return;
    const { proc, log } = startCommand([...UNSHARE, node, '--disable-sigusr1', bundle, '--', 'sleep', '30']);
    await log.waitFor('child started');
    // The init is unshare's only child; outside the namespace it has an ordinary pid.
    const unsharePid = proc.pid!;
    const initPid = Number(readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim());
    process.kill(initPid, 'SIGTERM');
    const result = await proc;
    assert.equal(result.exitCode, 143);
    assert.equal(log.find('child exited')!.signal, 'SIGTERM');
  });
});

describe('as PID 1 with several processes', () => {
  test('orphans of one unit are reaped while every unit keeps its own status (and exec checks theirs)', async (t) => {
    if (!inNamespace(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-pid1-units-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const config = join(dir, 'tee-init.json');
    writeFileSync(config, JSON.stringify({
      processes: {
        // Ready only once an exec'd check exits 0: its status must reach Node, not the reaper.
        keeper: { command: unit('keeper'), ready: { exec: ['sh', '-c', 'exit 0'], interval: '10ms' } },
        orphans: { command: ['sh', '-c', ORPHANS], after: ['keeper'] },
      },
    }));
    const { proc, log } = startCommand([...UNSHARE, node, '--disable-sigusr1', bundle, '--config', config]);
    const result = await proc;
    assert.equal(result.stdout.split('\n').find((l) => l.startsWith('zombies=')), 'zombies=0 sleeps=0', log.text);
    assert.equal(result.exitCode, 7, 'the orphans unit decides, its status intact');
    assert.equal(log.find('keeper ready')!.check, 'exec sh -c exit 0');
    assert.equal(log.find('keeper exited')!.unit, 'keeper', 'the other unit was stopped and its exit seen');
    assert.equal(log.find('tee-init starting')!.pid, 1);
  });
});

describe('not PID 1', () => {
  test('--subreaper reaps orphans of the child (and without it, nobody does)', async (t) => {
    // In a PID namespace of its own (so that /proc shows only this test's processes), under a
    // plain Node PID 1 that reaps nothing but its own child: the init is not PID 1 there.
    if (!inNamespace(t)) return;
    const run = async (subreaper: boolean) => {
      const init = [node, '--disable-sigusr1', bundle, ...(subreaper ? ['--subreaper'] : []), '--', 'sh', '-c', ORPHANS];
      const { proc, log } = startCommand([...UNSHARE, node, '-e', PLAIN_PID1, ...init]);
      const result = await proc;
      assert.equal(result.exitCode, 7, log.text);
      assert.notEqual(log.find('tee-init starting')!.pid, 1);
      return { stdout: result.stdout, log };
    };
    const reaped = await run(true);
    assert.equal(reaped.stdout, 'zombies=0 sleeps=0', reaped.log.text);
    assert.equal(reaped.log.find('not PID 1'), undefined);
    const control = await run(false);
    assert.equal(control.stdout, 'zombies=100 sleeps=100');
  });

  test('--subreaper: what the program left running (adopted by the init) ends with the init, as under a PID 1', async () => {
    // The program starts a background job and exits at once: the job is orphaned, adopted by the init.
    const { proc, log } = startInit(['--subreaper', '--', 'sh', '-c', 'sleep 1000 >/dev/null 2>&1 & echo $!'], { stdout: 'pipe' });
    const result = await proc;
    const left = Number(String(result.stdout).trim());
    assert.equal(result.exitCode, 0, log.text);
    try {
      const state = processState(left);
      assert.ok(state === undefined || state === 'Z', `the background job ${left} outlived the init (state ${state})`);
    } finally {
      try {
        process.kill(left, 'SIGKILL'); // only if it was left running (the test started it)
      } catch {
        // gone
      }
    }
    assert.match(log.find('left behind by the programs')!.message, /^1 processes left behind by the programs got SIGKILL as tee-init exits/);
  });

  test('without --subreaper it says that orphans will not be reaped', async () => {
    const { code, log } = await runInit(['--', 'true']);
    assert.equal(code, 0);
    assert.match(log.find('not PID 1')!.message, /orphaned descendants will not be reaped/);
  });

  test('TEE_INIT_SUBREAPER=1 is --subreaper', async () => {
    const { code, log } = await runInit(['--', 'true'], { env: { TEE_INIT_SUBREAPER: '1' } });
    assert.equal(code, 0);
    assert.equal(log.find('not PID 1'), undefined);
  });
});
