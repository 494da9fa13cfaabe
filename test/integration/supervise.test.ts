// The init core against real processes and real signals (issue 2, points 1-4 and 6).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Lines, until } from '../helpers/lines.ts';
import { node, root, runInit, startInit } from '../helpers/init.ts';

const catcher = join(root, 'test', 'fixtures', 'signal-catcher.mjs');
const FORWARDED = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTRAP', 'SIGABRT', 'SIGUSR1', 'SIGUSR2', 'SIGALRM',
  'SIGTERM', 'SIGSTKFLT', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM',
  'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS'] as const;

function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

describe('the child', () => {
  test('inherits stdio, cwd and environment and runs without a shell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-cwd-'));
    try {
      // The child reports what it sees; `$HOME;echo` must arrive verbatim (no shell).
      const script = `
        const fs = require('node:fs');
        const flags = (fd) => parseInt(/flags:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/fdinfo/' + fd, 'utf8'))[1], 8);
        console.log(JSON.stringify({
          argv: process.argv.slice(1), cwd: process.cwd(), marker: process.env.TEE_TEST_MARKER, initSetting: process.env.TEE_INIT_GRACE_PERIOD,
          nonblockOut: (flags(1) & 0o4000) !== 0, nonblockErr: (flags(2) & 0o4000) !== 0,
        }));`;
      const { result, code } = await runInit(['--', node, '-e', script, '$HOME;echo', '*'], {
        cwd: dir,
        env: { TEE_TEST_MARKER: 'from-the-init', TEE_INIT_GRACE_PERIOD: '5s' },
      });
      assert.equal(code, 0, result.stderr as string);
      const seen = JSON.parse(result.stdout as string);
      assert.deepEqual(seen.argv, ['$HOME;echo', '*']);
      assert.equal(seen.cwd, dir);
      assert.equal(seen.marker, 'from-the-init');
      assert.equal(seen.initSetting, undefined, "tee-init's own TEE_INIT_* settings are not the child's");
      // Node switches a stdio pipe it wraps to O_NONBLOCK, and the child shares the file description.
      assert.equal(seen.nonblockOut, false, "the init left the child's stdout blocking");
      assert.equal(seen.nonblockErr, false, "the init left the child's stderr blocking");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('starts with no signal blocked or ignored, whatever the init itself blocks and handles', async () => {
    // cat, not node: Node ignores SIGPIPE and SIGXFSZ in itself at start-up.
    // The init is started with SIGUSR1 blocked (--disable-sigusr1) and handles 24 signals.
    const { result, code } = await runInit(['--', 'cat', '/proc/self/status']);
    assert.equal(code, 0);
    assert.match(result.stdout as string, /^SigBlk:\s+0000000000000000$/m, 'nothing the init blocks leaks into the child');
    assert.match(result.stdout as string, /^SigIgn:\s+0000000000000000$/m, 'nothing the init ignores leaks into the child');
  });

  test('runs in its own process group and session', async () => {
    const { proc, log } = startInit(['--', 'sleep', '30']);
    const started = await log.waitFor('child started');
    const pid = started.pid as number;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(2, 4).map(Number);
    assert.equal(pgrp, pid);
    assert.equal(session, pid);
    proc.kill('SIGTERM');
    assert.equal((await proc).exitCode, 143);
  });
});

describe('signals', () => {
  test('with --cpu-prof, SIGPROF is the profiler\'s: not forwarded (the child lives), and the profile has samples', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-cpu-prof-'));
    try {
      // V8's sampler sends SIGPROF to the init's thread about every millisecond: forwarded, the
      // first one kills a child that keeps SIGPROF's default action (sleep), exit 155.
      const { proc } = startInit(['--', 'sleep', '1'], {}, ['--disable-sigusr1', '--cpu-prof', `--cpu-prof-dir=${dir}`]);
      const result = await proc;
      assert.equal(result.exitCode, 0, result.stderr as string);
      const [file] = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
      assert.ok(file, 'the init wrote its profile');
      const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { samples: number[] };
      assert.ok(profile.samples.length > 10, `the profile has ${profile.samples.length} samples`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every catchable signal but SIGCHLD, SIGPIPE and the fault signals reaches the child as itself', async () => {
    const { proc, log } = startInit(['--grace-period', '30s', '--', node, catcher], { stdout: 'pipe' });
    const out = new Lines(proc.stdout!);
    const childPid = Number((await out.until(/^ready (\d+)/))[1]);
    const initPid = proc.pid!;
    for (const sig of FORWARDED) {
      process.kill(initPid, sig);
      assert.equal(await out.next(), `got ${sig}`);
      // Job-control signals stop the child only if it wants; the init itself never stops.
      assert.notEqual(procStatus(initPid).State?.[0], 'T', `init stopped after ${sig}`);
    }
    // SIGCHLD is the init's own business: it is not passed on (the next line is SIGUSR2's).
    process.kill(initPid, 'SIGCHLD');
    process.kill(initPid, 'SIGUSR2');
    assert.equal(await out.next(), 'got SIGUSR2');
    process.kill(childPid, 'SIGKILL');
    assert.equal((await proc).exitCode, 137);
    // At debug level each forward is logged; at info it is not.
    assert.equal(log.find('forwarded SIGHUP'), undefined);
  });

  test('forwarded signals are logged at debug level with the child pid', async () => {
    const { proc, log } = startInit(['--log-level', 'debug', '--', node, catcher, 'SIGHUP'], { stdout: 'pipe' });
    const out = new Lines(proc.stdout!);
    await out.until(/^ready/);
    process.kill(proc.pid!, 'SIGHUP');
    await out.until(/^got SIGHUP$/);
    const rec = await log.waitFor('forwarded SIGHUP');
    assert.equal(rec.severity, 'DEBUG');
    assert.equal(rec.signal, 'SIGHUP');
    assert.equal(typeof rec.pid, 'number');
    proc.kill('SIGTERM');
    await proc;
  });

  for (const sig of ['SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL'] as const) {
    test(`${sig} keeps its default action: the init dies of it instead of hanging`, async () => {
      const { proc, log } = startInit(['--', 'sleep', '30']);
      const started = await log.waitFor('child started');
      proc.kill(sig);
      await new Promise((r) => proc.nodeChildProcess.once('exit', r));
      process.kill(started.pid as number, 'SIGKILL'); // the orphaned sleep, which holds stderr open
      const result = await proc;
      assert.equal(result.signal, sig);
    });
  }

  test('SIGTSTP stops a child without a handler, SIGCONT resumes it; the init keeps running', async () => {
    const { proc, log } = startInit(['--', 'sleep', '30']);
    const pid = (await log.waitFor('child started')).pid as number;
    const state = (p: number) => procStatus(p).State?.[0];
    proc.kill('SIGTSTP');
    await until(() => state(pid) === 'T', 'the child to stop');
    assert.notEqual(state(proc.pid!), 'T', 'the init itself must not stop');
    proc.kill('SIGCONT');
    await until(() => state(pid) === 'S', 'the child to resume');
    proc.kill('SIGTERM');
    assert.equal((await proc).exitCode, 143);
  });

  test('SIGTERM to a stopped child also wakes it, so it can act on the TERM', async () => {
    const { proc, log } = startInit(['--grace-period', '30s', '--', 'sleep', '30']);
    const pid = (await log.waitFor('child started')).pid as number;
    process.kill(pid, 'SIGSTOP');
    await until(() => procStatus(pid).State?.[0] === 'T', 'the child to stop');
    proc.kill('SIGTERM');
    const result = await proc; // 30 s grace: only the SIGCONT makes this prompt
    assert.equal(result.exitCode, 143);
  });

  test('--signal-group reaches grandchildren behind a shell; the default reaches only the child', async () => {
    const grandchild = `process.on('SIGUSR2', () => { console.log('grandchild got SIGUSR2'); process.exit(0); }); console.log('grandchild ready'); setInterval(() => {}, 1e9);`;
    // sh waits for the grandchild; sh itself ignores nothing, so trap USR2 to keep it alive.
    const shell = `trap 'echo shell got USR2' USR2; "$0" -e "$1" & wait; wait`;
    for (const group of [true, false]) {
      const args = [...(group ? ['--signal-group'] : []), '--', 'sh', '-c', shell, node, grandchild];
      const { proc, log } = startInit(args, { stdout: 'pipe' });
      const out = new Lines(proc.stdout!);
      await out.until(/grandchild ready/);
      const shellPid = (await log.waitFor('child started')).pid as number;
      proc.kill('SIGUSR2');
      const seen = new Set([await out.next(), ...(group ? [await out.next()] : [])]);
      assert.ok(seen.has('shell got USR2'), [...seen].join());
      assert.equal(seen.has('grandchild got SIGUSR2'), group, `group=${group}: ${[...seen].join()}`);
      try {
        process.kill(-shellPid, 'SIGKILL'); // the child's whole group, grandchild included
      } catch (err) {
        // With the group, the grandchild exits on its signal and the shell's waits return: gone already.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
      await proc;
    }
  });
});

describe('exit status', () => {
  for (const code of [0, 1, 2, 42, 77, 126, 127, 128, 200, 255]) {
    test(`child exit code ${code} is the init's`, async () => {
      const { code: got } = await runInit(['--', 'sh', '-c', `exit ${code}`]);
      assert.equal(got, code);
    });
  }

  for (const [sig, n] of [['TERM', 15], ['HUP', 1], ['QUIT', 3], ['KILL', 9], ['USR1', 10], ['SEGV', 11]] as const) {
    test(`child killed by SIG${sig} gives 128+${n}`, async () => {
      const { code, log } = await runInit(['--', 'sh', '-c', `kill -${sig} $$`]);
      assert.equal(code, 128 + n);
      const exited = log.find('child exited')!;
      assert.equal(exited.signal, `SIG${sig}`);
      assert.equal(exited.status, 128 + n);
    });
  }

  test('a command that is not found gives 127 and one line naming it', async () => {
    const { code, log, result } = await runInit(['--', 'no-such-command-xyz', 'arg']);
    assert.equal(code, 127);
    const errors = log.records.filter((r) => r.severity === 'ERROR');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /cannot run "no-such-command-xyz": command not found/);
    assert.equal(result.stdout, '');
  });

  test('a file that is not executable, or a directory, gives 126', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-noexec-'));
    try {
      const file = join(dir, 'script');
      writeFileSync(file, '#!/bin/sh\nexit 0\n');
      chmodSync(file, 0o644);
      for (const target of [file, dir]) {
        const { code, log } = await runInit(['--', target]);
        assert.equal(code, 126);
        assert.match(log.find('cannot run')!.message, /permission denied/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('stopping', () => {
  test('SIGTERM is forwarded and the child that exits on it decides the status', async () => {
    const script = `process.on('SIGTERM', () => { console.log('bye'); process.exit(0); }); console.log('up'); setInterval(() => {}, 1e9);`;
    const { proc } = startInit(['--', node, '-e', script], { stdout: 'pipe' });
    const out = new Lines(proc.stdout!);
    await out.until(/^up$/);
    proc.kill('SIGTERM');
    const result = await proc;
    assert.equal(result.exitCode, 0);
    assert.match(result.stdout as string, /bye/);
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    test(`a child ignoring ${sig} gets SIGKILL after the grace period: status 137`, async () => {
      const script = `process.on('${sig}', () => console.log('ignoring')); console.log('up'); setInterval(() => {}, 1e9);`;
      const { proc, log } = startInit(['--grace-period', '300ms', '--', node, '-e', script], { stdout: 'pipe' });
      const out = new Lines(proc.stdout!);
      await out.until(/^up$/);
      const t0 = Date.now();
      proc.kill(sig);
      await out.until(/^ignoring$/);
      const result = await proc;
      assert.equal(result.exitCode, 137);
      assert.ok(Date.now() - t0 >= 250, 'not before the grace period');
      assert.ok(log.find('grace period over'));
    });
  }

  test('the grace period comes from TEE_INIT_GRACE_PERIOD too', async () => {
    const script = `process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1e9);`;
    const { proc, log } = startInit(['--', node, '-e', script], { stdout: 'pipe', env: { TEE_INIT_GRACE_PERIOD: '200ms' } });
    await new Lines(proc.stdout!).until(/^up$/);
    proc.kill('SIGTERM');
    assert.equal((await proc).exitCode, 137);
    assert.equal(log.find('SIGTERM forwarded')!.gracePeriodMs, 200);
  });

  test('after the child is gone the init exits at once with its status, whatever arrives meanwhile', async () => {
    // The grandchild outlives the child and holds no stdio: the init must not wait for it.
    const { proc, log } = startInit(['--', 'sh', '-c', 'sleep 30 >/dev/null 2>&1 & echo $!; read x; exit 3'], {
      stdout: 'pipe',
      stdin: 'pipe',
    });
    const out = new Lines(proc.stdout!);
    const orphan = Number(await out.next());
    await log.waitFor('child started');
    const storm = setInterval(() => {
      try {
        proc.kill('SIGHUP');
      } catch {
        /* the init may be gone */
      }
    }, 1);
    proc.stdin!.end('\n');
    const result = await proc;
    clearInterval(storm);
    process.kill(orphan, 'SIGKILL');
    // sh exits 3 or, if a forwarded HUP won the race, 129: either way the child's own status.
    const exited = log.find('child exited')!;
    assert.equal(result.exitCode, exited.status);
    assert.ok(result.exitCode === 3 || result.exitCode === 129, String(result.exitCode));
  });
});
