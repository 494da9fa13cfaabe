// Nothing the init starts outlives it (issue 18, point 7): a reload command running when the
// init is told to stop gets SIGTERM, its grace period and SIGKILL, and the init exits only once
// it (and what it started) is gone; an exec readiness check ends at its timeout even when a
// process it started holds its output open. Real bundle, real signals, real sh; as a subreaper
// (not PID 1), and as PID 1 of a real PID namespace (where the kernel would SIGKILL whatever is
// left when the init exits: the command must have had its SIGTERM before that).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, existsSync, openSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { processState } from '../../src/supervise/proc.ts';
import { bundle, node, startCommand, startInit, type Started } from '../helpers/init.ts';
import { Lines } from '../helpers/lines.ts';
import { isRoot, needs } from '../helpers/tools.ts';

/** A process still running (a zombie has ended: it only waits for its reaper). */
function running(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z';
}

/** Processes (outside a zombie state) whose command line contains `marker`. */
function withMarker(marker: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(marker) && running(pid);
    } catch {
      return false;
    }
  });
}

interface Fixture {
  dir: string;
  config: string;
  source: string;
  /** Where the reload command says "PID SLEEPPID" once it runs. */
  said: Lines;
  /** Exists once the reload command got its SIGTERM (its trap ran). */
  termFile: string;
}

/**
 * A process reading a file secret, refreshed on SIGHUP; its reload command traps SIGTERM (writes
 * termFile), runs a background sleep, says both pids through a FIFO and waits.
 */
function fixture(t: TestContext): Fixture {
  const dir = mkdtempSync('/dev/shm/tee-init-outlive-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const source = join(dir, 'key.src');
  writeFileSync(source, 'first');
  const fifo = join(dir, 'said');
  execFileSync('mkfifo', [fifo]);
  // Opened read-write and non-blocking: no open that waits for a writer, and destroyable.
  const said = new Socket({ fd: openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
  t.after(() => said.destroy());
  const termFile = join(dir, 'reload-got-term');
  const reload = `trap 'echo term > ${termFile}; exit 0' TERM; sleep 300 & echo "$$ $!" > ${fifo}; wait`;
  const config = join(dir, 'tee-init.json');
  writeFileSync(config, JSON.stringify({
    secrets: { key: { source: 'file', path: source, file: 'key' } },
    output: { dir: join(dir, 'out') },
    refresh: { every: '1h' },
    processes: {
      // The SIGHUP that asks for the refresh reaches the program too: it ignores it (ready once it does).
      app: {
        command: ['sh', '-c', `trap "" HUP; touch ${join(dir, 'up')}; exec sleep 1000`, '{{secrets.key.path}}'],
        ready: { file: join(dir, 'up'), interval: '20ms' }, reload: { exec: ['sh', '-c', reload], timeout: '10m' },
        gracePeriod: '30s',
      },
    },
  }));
  return { dir, config, source, termFile, said: new Lines(said) };
}

/** Rotates the secret, SIGHUPs the init, and returns the reload command's pids once it runs. */
async function reloading(f: Fixture, init: Started, initPid: number): Promise<{ shell: number; sleep: number }> {
  await init.log.waitFor('all units ready', 60_000);
  writeFileSync(f.source, 'second');
  process.kill(initPid, 'SIGHUP');
  const [shell, sleep] = (await f.said.next(60_000)).split(' ').map(Number) as [number, number];
  assert.ok(running(shell) && running(sleep), 'the reload command runs');
  return { shell, sleep };
}

describe('a reload command running at the init\'s stop', () => {
  test('as a subreaper: it gets SIGTERM (with its background job) and is gone before the init exits', async (t) => {
    const f = fixture(t);
    const init = startInit(['--subreaper', '--config', f.config]);
    const pids = await reloading(f, init, init.proc.pid!);
    init.proc.kill('SIGTERM');
    const result = await init.proc;
    // Checked right at the init's exit: anything still running now outlived it.
    const left = [pids.shell, pids.sleep].filter(running);
    assert.deepEqual(left, [], `still running after the init exited: ${left.join(', ')}\n${init.log.text}`);
    assert.ok(existsSync(f.termFile), 'the command had its SIGTERM (its trap ran), not just the SIGKILL');
    assert.equal(result.exitCode, 143, init.log.text); // the program's own status: SIGTERM ended it
  });

  test('as PID 1 of a PID namespace: it gets its SIGTERM before the init exits (not the kernel\'s SIGKILL after)', async (t) => {
    if (!needs(t, 'unshare', 'apt-get install util-linux')) return;
    if (!isRoot) {
      if (process.env.CI) throw new Error('PID-namespace tests need root in CI');
      return t.skip('needs root for unshare --pid');
    }
    const f = fixture(t);
    const init = startCommand(['unshare', '--pid', '--fork', '--mount-proc', node, '--disable-sigusr1', bundle, '--config', f.config]);
    await init.log.waitFor('tee-init starting', 60_000);
    // The init is unshare's only child; outside the namespace it has an ordinary pid.
    const initPid = Number(readFileSync(`/proc/${init.proc.pid}/task/${init.proc.pid}/children`, 'utf8').trim());
    await reloading(f, init, initPid);
    process.kill(initPid, 'SIGTERM');
    const result = await init.proc;
    assert.ok(existsSync(f.termFile), `the command had its SIGTERM before the namespace ended\n${init.log.text}`);
    assert.equal(result.exitCode, 143, init.log.text); // the program's own status: SIGTERM ended it
  });
});

test('an exec readiness check whose background job holds its output open still ends at its timeout, and the job with it', async (t) => {
  const dir = mkdtempSync('/dev/shm/tee-init-outlive-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const marker = `299.${process.pid}`; // a sleep only this test starts
  const config = join(dir, 'tee-init.json');
  writeFileSync(config, JSON.stringify({
    processes: { app: { command: ['sleep', '1000'], ready: { exec: ['sh', '-c', `sleep ${marker} & exit 1`], interval: '50ms', timeout: '1s' } } },
  }));
  const init = startInit(['--subreaper', '--config', config]);
  const result = await init.proc;
  assert.equal(result.exitCode, 69, init.log.text);
  // The last attempt gets only what is left of the 1s: on a loaded machine it may be cut short.
  assert.match(init.log.find('did not pass within')!.message, /^processes\.app\.ready: exec sh -c sleep \S+ & exit 1 did not pass within 1s \(last: (exit 1|did not finish within \d+ ms)\)/);
  assert.deepEqual(withMarker(`sleep\0${marker}`), [], 'no background job of a check outlives the init');
});
