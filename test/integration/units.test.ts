// processes: through the real bundle, with real processes and real signals (issue 10): start
// order and readiness, the exit rule, ordered stop seen from the children, restarts, signals.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Lines } from '../helpers/lines.ts';
import { freePort } from '../helpers/net.ts';
import { events, has, startUnits, unit } from '../helpers/units.ts';

const cleanups: (() => void)[] = [];

/** Waits until each of `names` has reported `event`, in any order. */
async function seenAll(out: Lines, names: string[], event: string): Promise<void> {
  const seen = () => new Set(events(out.all.join('\n')).filter((e) => e.event === event).map((e) => e.unit));
  while (!names.every((n) => seen().has(n))) await out.next(60_000);
}

/** Started is not the same as handling signals: wait for each fixture's "up" (its handlers are in). */
const upLines = (out: Lines, names: string[]) => seenAll(out, names, 'up');
after(() => cleanups.forEach((c) => c()));

async function run(config: Parameters<typeof startUnits>[0], args: string[] = []) {
  const s = startUnits(config, args);
  cleanups.push(s.cleanup);
  const result = await s.proc;
  return { result, log: s.log, evs: events(String(result.stdout)) };
}

describe('start order and readiness', () => {
  test('a oneshot, then a backend once its port accepts, then what is after it; check-free units are ready when started', async () => {
    const port = await freePort();
    const s = startUnits({
      processes: {
        prep: { command: unit('prep', 'exit=0', 'after=150'), oneshot: true },
        backend: { command: unit('backend', `port=${port}`, 'delay=300'), after: ['prep'], ready: { tcp: `127.0.0.1:${port}`, interval: '20ms' } },
        front: { command: unit('front', `connect=${port}`), after: ['backend'] },
      },
    });
    cleanups.push(s.cleanup);
    const out = new Lines(s.proc.stdout!);
    await out.until(/^front connected/, 60_000);
    await s.log.waitFor('all units ready', 60_000);
    s.proc.kill('SIGTERM');
    const result = await s.proc;
    const evs = events(out.all.join('\n'));
    const at = (u: string, e: string) => has(evs, u, e)?.at ?? assert.fail(`${u} ${e} missing: ${out.all.join(' | ')}`);
    assert.ok(at('backend', 'up') >= at('prep', 'up') + 150, 'backend started only after the oneshot exited');
    assert.ok(at('front', 'up') >= at('backend', 'listening'), 'front started only once the backend accepted');
    assert.equal(has(evs, 'front', 'refused-ECONNREFUSED'), undefined);
    assert.equal(result.exitCode, 0, s.log.text);
    for (const name of ['prep', 'backend', 'front']) {
      assert.ok(s.log.records.every((r) => !String(r.message).startsWith(`${name} `) || r.unit === name), `every line about ${name} names it`);
    }
  });

  test('a process that exits while others wait for its readiness fails the start at once, naming it', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const { result, log, evs } = await run({
      processes: {
        backend: { command: unit('backend', 'exit=9', 'after=100'), ready: { tcp: `127.0.0.1:${port}`, timeout: '20s' } },
        front: { command: unit('front'), after: ['backend'] },
      },
    });
    assert.equal(result.exitCode, 9, log.text);
    assert.ok(Date.now() - t0 < 10_000, 'not after the readiness timeout');
    const error = log.records.find((r) => r.severity === 'ERROR')!;
    assert.match(error.message, /^processes\.backend exited with status 9 before it was ready$/);
    assert.equal(has(evs, 'front', 'up'), undefined, 'nothing after it started');
  });

  test('readiness that never comes: 69 naming the check, and the process is stopped', async () => {
    const port = await freePort();
    const { result, log, evs } = await run({
      processes: { backend: { command: unit('backend'), ready: { tcp: `127.0.0.1:${port}`, interval: '20ms', timeout: '300ms' } } },
    });
    assert.equal(result.exitCode, 69, log.text);
    assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, new RegExp(`^processes\\.backend\\.ready: tcp 127\\.0\\.0\\.1:${port} did not pass within 300ms \\(last: ECONNREFUSED\\)`));
    assert.equal(log.find('stopping backend with SIGTERM')!.unit, 'backend', 'the process that never became ready is stopped');
    assert.ok(evs.length >= 0);
  });

  test('file, exec and http checks', async () => {
    const port = await freePort();
    const s = startUnits((dir) => ({
      output: { dir: `${dir}/out` },
      processes: {
        maker: { command: ['sh', '-c', 'sleep 0.2; touch "$0"; exec sleep 30', '{{output.dir}}/made'], ready: { file: '{{output.dir}}/made', interval: '20ms' } },
        web: { command: ['python3', '-m', 'http.server', String(port), '--bind', '127.0.0.1'], after: ['maker'], ready: { http: `http://127.0.0.1:${port}/`, interval: '50ms' } },
        probe: { command: unit('probe'), after: ['web'], ready: { exec: ['sh', '-c', `test -e "$0"`, '{{output.dir}}/made'] } },
      },
    }));
    cleanups.push(s.cleanup);
    const out = new Lines(s.proc.stdout!);
    await s.log.waitFor('all units ready', 60_000);
    await upLines(out, ['probe']);
    assert.match(s.log.find('web ready')!.check as string, /^http /);
    assert.match(s.log.find('probe ready')!.check as string, /^exec sh -c/);
    s.proc.kill('SIGTERM');
    const result = await s.proc;
    assert.equal(result.exitCode, 0, s.log.text);
  });

  test('a command that is not found: 127 naming the process, nothing after it started', async () => {
    const { result, log, evs } = await run({
      processes: { a: { command: ['no-such-program-xyz'] }, b: { command: unit('b'), after: ['a'] } },
    });
    assert.equal(result.exitCode, 127);
    assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /^processes\.a: cannot run "no-such-program-xyz": command not found/);
    assert.deepEqual(evs, []);
  });
});

describe('the exit rule', () => {
  test('a failing oneshot decides the status; no server is started', async () => {
    const { result, log, evs } = await run({
      processes: {
        initdb: { command: ['sh', '-c', 'exit 4'], oneshot: true },
        server: { command: unit('server'), after: ['initdb'] },
      },
    });
    assert.equal(result.exitCode, 4);
    assert.equal(has(evs, 'server', 'up'), undefined);
    assert.equal(log.find('server started'), undefined);
    assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /processes\.initdb \(oneshot\) failed with status 4/);
  });

  test('a backend dying stops the others; the init exits with the backend\'s status', async () => {
    const { result, log, evs } = await run({
      processes: {
        backend: { command: unit('backend', 'exit=7', 'after=400') },
        envoy: { command: unit('envoy'), after: ['backend'] },
      },
    });
    assert.equal(result.exitCode, 7, log.text);
    assert.ok(has(evs, 'envoy', 'got-SIGTERM'), 'the other unit was stopped');
    const error = log.records.find((r) => r.severity === 'ERROR')!;
    assert.equal(error.message, 'processes.backend exited with status 7');
    assert.equal(error.unit, 'backend');
  });

  test('killed by a signal: 128+N', async () => {
    const { result } = await run({ processes: { a: { command: ['sh', '-c', 'kill -USR1 $$'] }, b: { command: unit('b') } } });
    assert.equal(result.exitCode, 138);
  });

  test('only oneshots: 0 once all have finished', async () => {
    const { result } = await run({ processes: { a: { command: ['true'], oneshot: true }, b: { command: ['true'], oneshot: true, after: ['a'] } } });
    assert.equal(result.exitCode, 0);
  });
});

describe('stopping', () => {
  test('SIGTERM stops in reverse order, each with its own stop signal; seen from the children', async () => {
    const s = startUnits({
      processes: {
        db: { command: unit('db', 'stopdelay=100'), stopSignal: 'SIGINT' },
        api: { command: unit('api', 'stopcode=3', 'stopdelay=100'), after: ['db'] },
        edge: { command: unit('edge', 'ignore=SIGTERM'), after: ['api'], gracePeriod: '300ms' },
      },
    });
    cleanups.push(s.cleanup);
    const out = new Lines(s.proc.stdout!);
    await s.log.waitFor('all units ready', 60_000);
    await upLines(out, ['db', 'api', 'edge']);
    s.proc.kill('SIGTERM');
    const result = await s.proc;
    const evs = events(out.all.join('\n'));
    const edge = has(evs, 'edge', 'got-SIGTERM')!;
    const api = has(evs, 'api', 'got-SIGTERM')!;
    const db = has(evs, 'db', 'got-SIGINT')!;
    assert.ok(edge && api && db, out.all.join(' | '));
    assert.equal(has(evs, 'db', 'got-SIGTERM'), undefined, 'db got its stopSignal instead');
    assert.ok(api.at - edge.at >= 250, 'api waited for edge: its grace period and SIGKILL');
    assert.ok(db.at - api.at >= 90, 'db waited for api to exit');
    // edge was the first to end (SIGKILL after its grace period): 137.
    assert.equal(result.exitCode, 137, s.log.text);
    assert.ok(s.log.records.some((r) => r.unit === 'edge' && r.message === 'grace period over: sending SIGKILL'));
  });

  test('SIGHUP reaches every process; a unit that narrows its signals gets only those', async () => {
    const s = startUnits({
      processes: {
        a: { command: unit('a') },
        b: { command: unit('b'), after: ['a'] },
        c: { command: unit('c'), after: ['a'], signals: ['SIGUSR1'] },
      },
    });
    cleanups.push(s.cleanup);
    const out = new Lines(s.proc.stdout!);
    await s.log.waitFor('all units ready', 60_000);
    await upLines(out, ['a', 'b', 'c']);
    s.proc.kill('SIGHUP');
    await seenAll(out, ['a', 'b'], 'got-SIGHUP');
    s.proc.kill('SIGUSR1');
    await seenAll(out, ['a', 'b', 'c'], 'got-SIGUSR1');
    s.proc.kill('SIGTERM');
    await s.proc;
    assert.equal(has(events(out.all.join('\n')), 'c', 'got-SIGHUP'), undefined);
  });
});

describe('restarts', () => {
  test('on-failure with backoff, then give up: the status of the last run', async () => {
    const { result, log } = await run({
      processes: {
        flaky: { command: ['sh', '-c', 'exit 3'], restart: { policy: 'on-failure', max: 2, backoff: { initial: '50ms', max: '80ms' } } },
        other: { command: unit('other') },
      },
    });
    assert.equal(result.exitCode, 3, log.text);
    assert.equal(log.records.filter((r) => r.message === 'flaky started').length, 3);
    assert.deepEqual(log.records.filter((r) => r.restart !== undefined).map((r) => r.delayMs), [50, 80]);
    assert.ok(log.find('flaky gave up after 2 restarts'));
  });

  test('always: restarted even after exit 0; a stop during the backoff ends it', async () => {
    const s = startUnits({ processes: { tick: { command: ['sh', '-c', 'exit 0'], restart: { policy: 'always', max: 100, backoff: { initial: '20ms', max: '20ms' } } } } });
    cleanups.push(s.cleanup);
    await s.log.waitFor((r) => r.restart === 3, 60_000);
    s.proc.kill('SIGTERM');
    const result = await s.proc;
    assert.equal(result.exitCode, 0, s.log.text);
  });
});

describe('run.stopSignal and --stop-signal (one process)', () => {
  for (const [how, config, args, env] of [
    ['run.stopSignal', { run: { command: unit('one'), stopSignal: 'SIGINT' } }, [], {}],
    ['--stop-signal', { run: { command: unit('one') } }, ['--stop-signal', 'INT'], {}],
    ['TEE_INIT_STOP_SIGNAL', { run: { command: unit('one') } }, [], { TEE_INIT_STOP_SIGNAL: 'SIGINT' }],
  ] as const) {
    test(`${how}: a SIGTERM reaches the child as SIGINT`, async () => {
      const s = startUnits(config, [...args], { env });
      cleanups.push(s.cleanup);
      const out = new Lines(s.proc.stdout!);
      await out.until(/^one up/, 60_000);
      s.proc.kill('SIGTERM');
      await out.until(/^one got-SIGINT/);
      assert.equal((await s.proc).exitCode, 0);
      assert.equal(has(events(out.all.join('\n')), 'one', 'got-SIGTERM'), undefined);
    });
  }

  test('as dumb-init: only SIGTERM is rewritten, a SIGINT reaches the child as itself; a stop signal during the grace period is forwarded too', async () => {
    const s = startUnits({ run: { command: unit('one', 'ignore=SIGINT'), stopSignal: 'SIGQUIT' } }, ['--grace-period', '60s']);
    cleanups.push(s.cleanup);
    const out = new Lines(s.proc.stdout!);
    await out.until(/^one up/, 60_000);
    s.proc.kill('SIGINT');
    await out.until(/^one got-SIGINT/, 60_000);
    s.proc.kill('SIGTERM'); // while stopping: tini forwards every signal (here as the stop signal)
    await out.until(/^one got-SIGQUIT/, 60_000);
    assert.equal((await s.proc).exitCode, 0, 'it exited on the SIGQUIT, long before the grace period');
    assert.equal(has(events(out.all.join('\n')), 'one', 'got-SIGTERM'), undefined);
  });
});
