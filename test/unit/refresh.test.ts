// The refresh loop's decisions (src/refresh/), driven through its two seams: the pipeline's plan
// (fetch, check, publish, retire) and the run stage's target (reload, fail). The real stages
// behind them run in test/integration/rotation.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { rotatingSecrets } from '../../src/config/schema-refresh.ts';
import { checkUnits } from '../../src/config/schema-run.ts';
import { dataError, InitError } from '../../src/lib/errors.ts';
import { Refresher, type RefreshPlan } from '../../src/refresh/refresher.ts';
import { nextDelayMs, retryDelayMs, staleTooLong } from '../../src/refresh/schedule.ts';
import type { ReloadOutcome } from '../../src/run/types.ts';
import type { SecretValue } from '../../src/secrets/fetch.ts';
import { memoryLog } from '../helpers/log.ts';
import { createPki } from '../helpers/pki.ts';
import { metricsText } from '../../src/run/metrics.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const value = (name: string, text: string, origin = `${name}/versions/1`): SecretValue => ({ name, data: Buffer.from(text), origin });

interface Harness {
  plan: RefreshPlan;
  calls: string[];
  /** What the source holds now: the next fetch returns it. */
  source: Map<string, string>;
  reloads: ReadonlySet<string>[];
  fails: { status: number; message: string }[];
  clock: { t: number };
  log: ReturnType<typeof memoryLog>;
  refresher: Refresher;
  failNext?: Error | undefined;
  checkFails?: Error | undefined;
}

function harness(opts: { maxStale?: number; every?: number } = {}): Harness {
  const calls: string[] = [];
  const source = new Map([['cert', 'A'], ['key', 'a'], ['pinned', 'P']]);
  const current = new Map([['cert', value('cert', 'A')], ['key', value('key', 'a')], ['pinned', value('pinned', 'P')]]);
  const h = { calls, source, reloads: [] as ReadonlySet<string>[], fails: [] as { status: number; message: string }[], clock: { t: 1_000_000 }, log: memoryLog() } as Partial<Harness> as Harness;
  h.plan = {
    config: { every: opts.every ?? 60_000, jitter: 0.1, maxStale: opts.maxStale, onSighup: true },
    rotating: ['cert', 'key'],
    current,
    async fetch(names) {
      calls.push(`fetch ${names.join(',')}`);
      if (h.failNext) throw h.failNext;
      return new Map(names.map((n) => [n, value(n, source.get(n)!, `${n}/versions/${source.get(n)!.length}`)]));
    },
    check(next) {
      calls.push(`check ${[...next.keys()].join(',')}`);
      if (h.checkFails) throw h.checkFails;
    },
    publish(next) {
      calls.push(`publish ${[...next.values()].map((v) => v.data.toString()).join('')}`);
    },
    retireOld() {
      calls.push('retire');
    },
  };
  h.refresher = new Refresher({
    plan: h.plan,
    log: h.log.log,
    now: () => h.clock.t,
    random: () => 0.5,
    target: {
      async reload(changed): Promise<ReloadOutcome[]> {
        calls.push(`reload ${[...changed].join(',')}`);
        h.reloads.push(changed);
        return [{ unit: 'redis', how: 'exec redis-cli', result: 'done' }, { unit: 'app', how: 'none', result: 'skipped', why: 'reload: none' }];
      },
      fail(_what, status, message) {
        h.fails.push({ status, message });
      },
    },
  });
  return h;
}

describe('refresh schedule', () => {
  it('comes at most jitter earlier than every, never later', () => {
    assert.equal(nextDelayMs({ every: 60_000, jitter: 0.1 }, () => 0), 60_000);
    assert.equal(nextDelayMs({ every: 60_000, jitter: 0.1 }, () => 0.999999), 54_000);
    assert.equal(nextDelayMs({ every: 60_000, jitter: 0 }, () => 0.7), 60_000);
  });
  it('retries a failure after 30 s, doubling, never later than every', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs({ every: 3_600_000 }, n)), [30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000]);
    assert.equal(retryDelayMs({ every: 3_600_000 }, 50), 3_600_000);
    assert.equal(retryDelayMs({ every: 500 }, 1), 500);
  });
  it('is stale too long only with maxStale, from the last good read', () => {
    assert.equal(staleTooLong({ maxStale: undefined }, 0, 1e12), false);
    assert.equal(staleTooLong({ maxStale: 1000 }, 5000, 5999), false);
    assert.equal(staleTooLong({ maxStale: 1000 }, 5000, 6000), true);
  });
});

describe('refresh config', () => {
  const parse = (refresh: unknown, secrets: unknown = {}) => configSchema.safeParse({ refresh, secrets });
  it('takes every, a percentage jitter, maxStale and onSighup', () => {
    const r = parse({ every: '1h', jitter: '5%', maxStale: '24h' });
    assert.ok(r.success);
    assert.deepEqual(r.data.refresh, { every: 3_600_000, jitter: 0.05, maxStale: 86_400_000, onSighup: true });
  });
  it('refuses a maxStale not longer than every, and a jitter over 50%', () => {
    const a = parse({ every: '1h', maxStale: '30m' });
    assert.ok(!a.success);
    assert.match(JSON.stringify(a.error.issues), /maxStale must be longer than every/);
    assert.ok(!parse({ every: '1h', jitter: '60%' }).success);
    assert.ok(!parse({ jitter: '5%' }).success, 'every is required');
  });
  it('accepts version aliases in refs, and tells pinned versions from those that can change', () => {
    const secrets = {
      a: { source: 'gcp', ref: 'projects/p/secrets/a/versions/latest', credentials: 'c' },
      b: { source: 'gcp', ref: 'projects/p/secrets/b/versions/prod', credentials: 'c' },
      c: { source: 'gcp', ref: 'projects/p/secrets/c/versions/12', credentials: 'c' },
      d: { source: 'file', path: '/x' },
    };
    const r = configSchema.safeParse({ secrets });
    assert.ok(r.success, JSON.stringify(r.error?.issues));
    assert.deepEqual(rotatingSecrets(r.data.secrets), { rotating: ['a', 'b', 'd'], pinned: ['c'] });
  });
  it('refuses reload: on a oneshot, naming the field', () => {
    const r = configSchema.parse({ processes: { init: { command: ['x'], oneshot: true, reload: 'restart' }, app: { command: ['y'], after: ['init'] } } });
    assert.throws(() => checkUnits(r, 'c.yaml'), /config c\.yaml: processes\.init\.reload: a oneshot has finished before anything rotates/);
  });

  it('takes reload: as restart, none, a signal or a command, and refuses anything else in one line', () => {
    for (const reload of ['restart', 'none', { signal: 'SIGHUP' }, { exec: ['redis-cli', 'ping'], timeout: '5s' }]) {
      const r = configSchema.safeParse({ run: { command: ['x'], reload } });
      assert.ok(r.success, JSON.stringify(reload));
    }
    const bad = configSchema.safeParse({ run: { command: ['x'], reload: { signal: 'SIGKILL' } } });
    assert.ok(!bad.success);
    const proc = configSchema.safeParse({ processes: { a: { command: ['x'], reload: 'reboot' } } });
    assert.ok(!proc.success);
    assert.match(JSON.stringify(proc.error.issues), /write restart, none, \{ signal: SIGHUP \} or \{ exec/);
  });
});

describe('Refresher', () => {
  it('reads only what can change; nothing changed: no check, no publish, no reload', async () => {
    const h = harness();
    await h.refresher.now('test');
    assert.deepEqual(h.calls, ['fetch cert,key']);
    assert.equal(h.refresher.status().lastResult, 'unchanged');
    assert.match(h.log.messages().join('\n'), /no secret changed/);
  });

  it('a change: checks the whole new set, publishes it, reloads those that read it, then retires the old', async () => {
    const h = harness();
    const oldCert = h.plan.current.get('cert')!.data;
    h.source.set('cert', 'B');
    h.clock.t += 5_000;
    await h.refresher.now('test');
    assert.deepEqual(h.calls, ['fetch cert,key', 'check cert,key,pinned', 'publish BaP', 'reload cert', 'retire']);
    assert.equal(h.plan.current.get('cert')!.data.toString(), 'B');
    assert.equal(oldCert.toString(), '\0', 'the old value is zeroed once the units reloaded');
    const st = h.refresher.status();
    assert.equal(st.lastResult, 'rotated');
    const cert = st.secrets.find((s) => s.name === 'cert')!;
    assert.equal(cert.installedAt, h.clock.t);
    assert.equal(cert.origin, 'cert/versions/1');
    assert.equal(st.secrets.find((s) => s.name === 'pinned')!.confirmedAt, 1_000_000, 'a pinned secret is never read again');
    assert.match(h.log.messages().join('\n'), /rotated cert; reloaded redis \(exec redis-cli\)/);
    assert.match(h.log.messages().join('\n'), /app reads rotated secrets but has reload: none; it keeps what it read until it restarts/);
  });

  it('a refused new set (CRC, mismatched pair) changes nothing and keeps the old values', async () => {
    const h = harness();
    h.source.set('cert', 'B');
    h.checkFails = dataError('secret cert: the certificate does not match key key');
    await h.refresher.now('test');
    assert.deepEqual(h.calls, ['fetch cert,key', 'check cert,key,pinned']);
    assert.equal(h.plan.current.get('cert')!.data.toString(), 'A');
    assert.equal(h.refresher.status().lastResult, 'failed');
    const line = h.log.records().find((r) => r.severity === 'WARNING')!;
    assert.match(String(line.message), /refresh failed, nothing changed .*does not match key key; next try in 30s/);
  });

  it('fails the init with 69 once the source has failed for maxStale, and not before', async () => {
    const h = harness({ every: 60_000, maxStale: 180_000 });
    h.failNext = new InitError(69, 'secret cert: Secret Manager unavailable');
    for (const t of [60_000, 120_000, 179_999]) {
      h.clock.t = 1_000_000 + t;
      await h.refresher.now('test');
      assert.equal(h.fails.length, 0, `still within maxStale at +${t} ms`);
    }
    h.clock.t = 1_000_000 + 180_000;
    await h.refresher.now('test');
    assert.equal(h.fails.length, 1);
    assert.equal(h.fails[0]!.status, 69);
    assert.match(h.fails[0]!.message, /no good read of the secrets for 3m \(refresh.maxStale 3m\): secret cert: Secret Manager unavailable/);
  });

  it('a good read resets the stale clock', async () => {
    const h = harness({ every: 60_000, maxStale: 180_000 });
    h.failNext = new Error('down');
    h.clock.t += 170_000;
    await h.refresher.now('test');
    h.failNext = undefined;
    await h.refresher.now('test');
    h.failNext = new Error('down');
    h.clock.t += 170_000;
    await h.refresher.now('test');
    assert.equal(h.fails.length, 0);
  });

  it('a trigger during a refresh runs one more after it, not two at once', async () => {
    const h = harness();
    const first = h.refresher.now('one');
    const second = h.refresher.now('two');
    const third = h.refresher.now('three');
    await Promise.all([first, second, third]);
    assert.deepEqual(h.calls, ['fetch cert,key', 'fetch cert,key']);
  });

  it('schedules the next refresh every less jitter, and the retry sooner after a failure', async () => {
    const h = harness({ every: 600_000 });
    h.refresher.start();
    assert.equal(h.refresher.status().nextAt, h.clock.t + 570_000);
    h.failNext = new Error('down');
    await h.refresher.now('test');
    assert.equal(h.refresher.status().nextAt, h.clock.t + 30_000);
    h.refresher.close();
  });

  it('never logs secret bytes', async () => {
    const h = harness();
    h.source.set('cert', 'NEW-SECRET-BYTES');
    await h.refresher.now('test');
    assert.doesNotMatch(h.log.text(), /NEW-SECRET-BYTES/);
  });
});

describe('certificates in use that are about to expire', () => {
  it('are warned about at every refresh that brings nothing newer, and exported as an expiry metric', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-refresh-pem-'));
    try {
      const pki = createPki(dir); // valid for a day
      const h = harness();
      const cert = readFileSync(pki.server.cert);
      // The harness's values are opaque bytes; give it a real certificate before the Refresher reads them.
      h.plan.current.set('cert', { name: 'cert', data: cert, origin: 'cert/versions/1' });
      h.source.set('cert', cert.toString());
      const r = new Refresher({ plan: h.plan, target: { reload: async () => [], fail: () => {} }, log: h.log.log, now: () => Date.now() });
      await r.now('test');
      const line = h.log.records().find((x) => /the certificate in use expires on/.test(String(x.message)));
      assert.ok(line, h.log.text());
      assert.match(String(line.message), /^refresh: secret cert: the certificate in use expires on \S+, in (23|24)h, its source has no newer version: upload a renewed one$/);
      const expiry = r.status().secrets.find((x) => x.name === 'cert')!.expiresAt!;
      assert.ok(Math.abs(expiry - (Date.now() + 86_400_000)) < 120_000);
      const text = metricsText([], 0, r.status());
      assert.match(text, new RegExp(`^tee_init_secret_certificate_expiry_timestamp_seconds\\{secret="cert"\\} ${expiry / 1000}$`, 'm'));
      assert.doesNotMatch(text, /expiry_timestamp_seconds\{secret="key"\}/, 'a secret without a certificate has no expiry');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
