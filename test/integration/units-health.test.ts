// processes: with the PSK listener as a unit and the health endpoint, through a whole boot
// against the emulated Confidential Space: redis behind the listener, openssl as the PSK peer,
// /readyz following the units, /metrics read by Prometheus's own Python parser.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { boot, SHARE_A, SHARE_B, type Boot } from '../helpers/boot.ts';
import { freePort } from '../helpers/net.ts';
import { needs, needsPython } from '../helpers/tools.ts';
import { startUnits, unit } from '../helpers/units.ts';

// The fakes answer slowly when the machine is loaded: what is tested here is not the fetch.
const LOADED_MACHINE_FETCH = { deadline: '60s', attemptTimeout: '10s', backoff: { initial: '20ms', max: '200ms' } };

const KEY = createHash('sha256').update(SHARE_A + SHARE_B).digest('hex');

/** Prometheus's reference parser (python3-prometheus-client): samples as [name, labels, value]. */
const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        out.append([s.name, s.labels, s.value, f.type])
print(json.dumps(out))`;

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

async function pskPing(port: number): Promise<boolean> {
  const r = await execa('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-psk', KEY, '-psk_identity', 'Client1', '-tls1_3', '-quiet'], {
    input: 'PING\r\nQUIT\r\n', reject: false, timeout: 10_000,
  });
  return r.stdout.includes('+PONG');
}

describe('units with listener units (psk) and the health endpoint', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  test('/readyz follows the units; the listener opens after the processes; /metrics parses as Prometheus text', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl')) return;
    if (!needsPython(t, 'prometheus_client.parser', 'apt-get install python3-prometheus-client')) return;
    const [listen, redisPort, healthPort] = [await freePort(), await freePort(), await freePort()];
    const go = join(b.dir, 'go');
    const config = b.config({
      log: { level: 'info' },
      fetch: LOADED_MACHINE_FETCH,
      run: undefined,
      processes: {
        redis: { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], ready: { tcp: `127.0.0.1:${redisPort}`, interval: '20ms' } },
        slow: { command: unit('slow'), ready: { file: go, interval: '20ms' } },
      },
      // workers: 0: the counters live in the init's thread, so /metrics shows a connection at once
      // (from worker threads they arrive once a second).
      psk: { mode: 'server', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${redisPort}`, workers: 0, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } },
      health: { listen: `127.0.0.1:${healthPort}` },
    });
    delete (config as Record<string, unknown>).run;
    const { proc, log } = b.start(config);
    try {
      await log.waitFor('redis ready', 60_000);
      assert.equal((await get(healthPort, '/healthz')).status, 200);
      const waiting = await get(healthPort, '/readyz');
      assert.equal(waiting.status, 503);
      assert.match(waiting.body, /^not ready: slow \(starting\), psk \(waiting\)$/m);
      writeFileSync(go, '');
      await log.waitFor('all units ready', 60_000);
      assert.ok(log.records.findIndex((r) => r.message === 'psk ready') > log.records.findIndex((r) => r.message === 'slow ready'), 'the listener opened last');
      assert.deepEqual(await get(healthPort, '/readyz'), { status: 200, body: 'ready\n' });
      assert.equal(await pskPing(listen), true);

      const metrics = await get(healthPort, '/metrics');
      assert.equal(metrics.status, 200);
      const parsed = await execa('/usr/bin/python3', ['-c', PARSE], { input: metrics.body });
      const samples = JSON.parse(parsed.stdout) as [string, Record<string, string>, number, string][];
      const value = (name: string, labels: Record<string, string>) => samples.find(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v))?.[2];
      assert.equal(value('tee_init_unit_ready', { unit: 'redis' }), 1);
      assert.equal(value('tee_init_unit_state', { unit: 'slow', state: 'ready' }), 1);
      assert.equal(value('tee_init_unit_restarts_total', { unit: 'redis' }), 0);
      assert.ok(value('tee_init_listener_connections_total', { unit: 'psk' })! >= 1, metrics.body);
      assert.ok(value('tee_init_listener_bytes_to_client_total', { unit: 'psk' })! > 0, metrics.body);
      assert.equal(samples.find(([n]) => n === 'tee_init_listener_connections_total')![3], 'counter');
      assert.equal((await get(healthPort, '/nope')).status, 404);
    } finally {
      proc.kill('SIGTERM');
    }
    const result = await proc;
    // psk closes first (it does not decide), then slow exits 0 on TERM: the status.
    assert.equal(result.exitCode, 0, log.text);
    assert.ok(log.records.findIndex((r) => r.message === 'psk closed') < log.records.findIndex((r) => r.message === 'redis exited'));
    rmSync(go);
    assert.deepEqual(b.leftovers(), []);
  });

  test('a health port taken after the plan checked it: the boot fails naming health.listen, nothing started, nothing left', async () => {
    // Taken before the boot, the plan refuses it (78, test/integration/plan.test.ts); here another
    // process takes it once the plan has found it free, so the endpoint's own bind fails.
    const port = await freePort();
    const busy = (await import('node:net')).createServer();
    try {
      const config = b.config({ fetch: LOADED_MACHINE_FETCH, processes: { a: { command: unit('a') } }, health: { listen: `127.0.0.1:${port}` } });
      delete (config as Record<string, unknown>).run;
      const { proc, log } = b.start(config);
      await log.waitFor('config loaded', 30_000);
      await new Promise<void>((r) => busy.listen(port, '127.0.0.1', r));
      const result = await proc;
      assert.equal(result.exitCode, 69, log.text);
      assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /^health\.listen 127\.0\.0\.1:\d+: cannot listen \(EADDRINUSE\)/);
      assert.equal(log.find('a started'), undefined);
      assert.deepEqual(b.leftovers(), []);
    } finally {
      busy.close();
    }
  });

  test('a listener unit that cannot start decides the status with its own code (78); the processes are stopped', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server')) return;
    // Taken once the plan found it free (taken before, the plan refuses it: plan.test.ts).
    const taken = await freePort();
    const busy = (await import('node:net')).createServer();
    try {
      const redisPort = await freePort();
      const config = b.config({
        fetch: LOADED_MACHINE_FETCH,
        processes: { redis: { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], ready: { tcp: `127.0.0.1:${redisPort}` } } },
        psk: { mode: 'server', listen: `127.0.0.1:${taken}`, connect: `127.0.0.1:${redisPort}`, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } },
      });
      delete (config as Record<string, unknown>).run;
      const { proc, log } = b.start(config);
      await log.waitFor('config loaded', 30_000);
      await new Promise<void>((r) => busy.listen(taken, '127.0.0.1', r));
      const result = await proc;
      assert.equal(result.exitCode, 78, log.text);
      const error = log.records.find((r) => r.severity === 'ERROR')!;
      assert.equal(error.unit, 'psk');
      assert.match(error.message, new RegExp(`^psk: psk\\.listen 127\\.0\\.0\\.1:${taken}: cannot listen \\(EADDRINUSE\\)`));
      assert.equal(log.find('stopping redis with SIGTERM')!.unit, 'redis');
      assert.ok(log.find('redis exited'));
      assert.deepEqual(b.leftovers(), []);
    } finally {
      busy.close();
    }
  });

  // run: says nothing about the listener: its one program waits for what it connects through all the same.
  for (const how of ['processes', 'run'] as const) test(`a client-mode psk listener unit opens first; ${how === 'run' ? 'run:' : 'a process after it'} talks through it to a TLS-PSK server (openssl s_server)`, async (t) => {
    if (!needs(t, 'openssl', 'apt-get install openssl')) return;
    const [remote, local] = [await freePort(), await freePort()];
    const server = execa('openssl', ['s_server', '-accept', `127.0.0.1:${remote}`, '-nocert', '-psk', KEY, '-psk_identity', 'Client1', '-tls1_3', '-rev'], { reject: false, stdin: 'pipe' });
    try {
      await new Promise<void>((resolve) => server.stdout!.on('data', (d: Buffer) => String(d).includes('ACCEPT') && resolve()));
      const app = `const s = require('net').connect(${local}, '127.0.0.1', () => s.write('hello\\n'));
        s.on('data', (d) => { console.log('app got ' + String(d).trim()); process.exit(0); });`;
      const config = b.config({
        fetch: LOADED_MACHINE_FETCH,
        ...(how === 'run' ? { run: { command: [process.execPath, '-e', app] } } : { processes: { app: { command: [process.execPath, '-e', app], after: ['psk'] } } }),
        psk: { mode: 'client', listen: `127.0.0.1:${local}`, connect: `127.0.0.1:${remote}`, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } },
      });
      if (how === 'processes') delete (config as Record<string, unknown>).run;
      const { proc, log } = b.start(config);
      const result = await proc;
      assert.equal(result.exitCode, 0, log.text);
      assert.match(String(result.stdout), /^app got olleh$/m);
      const started = log.records.findIndex((r) => r.message === (how === 'run' ? 'child started' : 'app started'));
      assert.ok(started > 0 && log.records.findIndex((r) => r.message === 'psk ready') < started, 'the listener opened first');
      assert.deepEqual(b.leftovers(), []);
    } finally {
      server.kill('SIGTERM');
      await server;
    }
  });
});

describe('the health endpoint with run: (one process)', () => {
  test('/readyz and /metrics report the one child as unit "run"', async () => {
    const port = await freePort();
    const s = startUnits({ run: { command: unit('one') }, health: { listen: `127.0.0.1:${port}` } });
    try {
      await s.log.waitFor('child started');
      assert.deepEqual(await get(port, '/readyz'), { status: 200, body: 'ready\n' });
      const metrics = (await get(port, '/metrics')).body;
      assert.match(metrics, /^tee_init_unit_ready\{unit="run",kind="process"\} 1$/m);
      assert.match(metrics, /^tee_init_unit_state\{unit="run",state="ready"\} 1$/m);
    } finally {
      s.proc.kill('SIGTERM');
      await s.proc;
      s.cleanup();
    }
  });
});
