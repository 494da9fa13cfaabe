// `tee-init check` with processes: prints the start order, and rejects what a boot would:
// a cycle, an unknown name, run: and processes: together, a non-loopback health endpoint.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { checkText } from '../../src/plan/text.ts';
import { InitError } from '../../src/lib/errors.ts';
import { runInit } from '../helpers/init.ts';

const dir = mkdtempSync(join(tmpdir(), 'tee-init-units-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function check(config: Record<string, unknown>) {
  const file = join(dir, `c${n++}.json`);
  writeFileSync(file, JSON.stringify(config));
  const { result, code } = await runInit(['check', '--config', file]);
  return { code, out: String(result.stdout), err: String(result.stderr).trim() };
}

// check opens file secrets as a boot would: the share is a real file.
writeFileSync(join(dir, 's1'), 'a-share-of-at-least-sixteen-bytes\n');
writeFileSync(join(dir, 's2'), 'another-share-of-sixteen-bytes\n');
const PSK_SECRETS = { s1: { source: 'file', path: join(dir, 's1') }, s2: { source: 'file', path: join(dir, 's2') } };
const psk = (mode: 'server' | 'client') => ({ mode, listen: '127.0.0.1:0', connect: '127.0.0.1:7001', identities: { Client1: { shares: ['s1', 's2'], combine: 'sha256-concat' } } });

describe('tee-init check with processes:', () => {
  test('with refresh: each process\'s reload and the secrets that trigger it; the schedule; pinned secrets', async () => {
    writeFileSync(join(dir, 'cert.pem'), 'not a certificate\n');
    const { code, out, err } = await check({
      secrets: {
        cert: { source: 'file', path: join(dir, 'cert.pem'), file: 'cert.pem' },
        pinned: { source: 'gcp', ref: 'projects/p/secrets/x/versions/3', credentials: 'c', file: 'x.pem' },
      },
      credentials: { c: { type: 'adc' } },
      processes: {
        web: { command: ['web', '--cert', '{{secrets.cert.path}}'], reload: { signal: 'SIGHUP' } },
        worker: { command: ['worker', '{{secrets.cert.path}}'] },
        side: { command: ['side'], reload: { exec: ['side-ctl', 'reload', '{{output.dir}}'], timeout: '5s' } },
      },
      refresh: { every: '1h', maxStale: '24h', jitter: '5%' },
    });
    assert.equal(code, 0, err);
    assert.match(out, /^process web +web --cert \S+\/cert\.pem\n +ready when started\n +on rotation: send SIGHUP; when cert change$/m);
    assert.match(out, /^ +on rotation: nothing \(the program keeps what it read\); when cert change$/m);
    assert.match(out, /^ +on rotation: run side-ctl reload \S+ \(must exit 0 within 5s\); it reads no secret file by path$/m);
    assert.match(out, /^refresh +every 1h \(up to 5% earlier at random\), and at once on SIGHUP\n +fatal \(69\) after 24h without a good read\n +reads cert again\n +pinned \(never change\): pinned$/m);
  });

  test('prints the start order and each unit: its command, after, readiness, restart, stop signal', async () => {
    const { code, out, err } = await check({
      processes: {
        envoy: { command: ['envoy', '-c', 'x'], after: ['backend'], stopSignal: 'SIGQUIT' },
        backend: { command: ['/server', '127.0.0.1:7777'], ready: { tcp: '127.0.0.1:7777', timeout: '5s' }, restart: { policy: 'on-failure', max: 3 } },
        migrate: { command: ['migrate'], oneshot: true },
      },
      health: { listen: '127.0.0.1:9090' },
    });
    assert.equal(code, 0, err);
    assert.match(out, /^units +start order: backend, envoy, migrate \(stopped in reverse\)$/m);
    assert.match(out, /^process backend +\/server 127\.0\.0\.1:7777\n +ready: tcp 127\.0\.0\.1:7777 \(every 100ms, up to 5s\)\n +restart on-failure, at most 3 \(backoff 1s\.\.30s\)$/m);
    assert.match(out, /^process envoy +envoy -c x\n +after backend\n +ready when started\n +stop with SIGQUIT$/m);
    assert.match(out, /^process migrate +migrate\n +oneshot \(must exit 0\)$/m);
    assert.match(out, /^health +http:\/\/127\.0\.0\.1:9090\/healthz/m);
  });

  test('--show: each process\'s argv and the env it adds, and every rendered file (the README promises it for Envoy in processes:)', async () => {
    const file = join(dir, `c${n++}.json`);
    writeFileSync(file, JSON.stringify({
      output: { dir: '/dev/shm/x' },
      processes: {
        backend: { command: ['/server', '127.0.0.1:7777'], env: { MODE: 'fast' } },
        web: { command: ['web', '--config', '{{output.dir}}/web.json'], files: [{ name: 'web.json', template: { port: 8080 } }], after: ['backend'] },
      },
    }));
    const { result, code } = await runInit(['check', '--show', '--config', file]);
    assert.equal(code, 0, String(result.stderr));
    const out = String(result.stdout);
    const shown = out.slice(out.indexOf('# what the programs get (--show)'));
    assert.ok(shown.length < out.length, out);
    assert.match(shown, /^ {2}backend:\n {4}preset: none\n {4}argv:\n {6}- \/server\n {6}- 127\.0\.0\.1:7777\n {4}env:\n {6}MODE: fast$/m);
    assert.match(shown, /^ {2}web:\n {4}preset: none\n {4}argv:\n {6}- web\n {6}- --config\n {6}- \/dev\/shm\/x\/web\.json$/m);
    assert.match(shown, /^ {2}- path: \/dev\/shm\/x\/web\.json\n {4}mode: "0400"\n {4}content: \|/m);
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['a cycle', { processes: { a: { command: ['a'], after: ['b'] }, b: { command: ['b'], after: ['a'] } } }, /processes\.a\.after: a cycle in after: a -> b -> a/],
    ['an unknown name', { processes: { a: { command: ['a'], after: ['bakend'] } } }, /processes\.a\.after\[0\]: no unit named "bakend" \(units: a\)/],
    ['itself', { processes: { a: { command: ['a'], after: ['a'] } } }, /processes\.a\.after\[0\]: a cannot be after itself/],
    ['run and processes', { run: { command: ['x'] }, processes: { a: { command: ['a'] } } }, /processes: use either run: \(one process\) or processes: \(several\), not both/],
    ['a health endpoint on the network', { run: { command: ['x'] }, health: { listen: '0.0.0.0:9090' } }, /health\.listen: must be a loopback address/],
    ['a ready check on a oneshot', { processes: { a: { command: ['a'], oneshot: true, ready: { file: '/x' } } } }, /processes\.a\.ready: a oneshot is ready when it has exited 0/],
    ['two checks at once', { processes: { a: { command: ['a'], ready: { file: '/x', tcp: '127.0.0.1:1' } } } }, /processes\.a\.ready: give exactly one check of tcp, unix, file, exec, http \(got tcp, file\)/],
    ['an http check off loopback', { processes: { a: { command: ['a'], ready: { http: 'http://example.com/' } } } }, /processes\.a\.ready\.http: (found "http:\/\/example\.com\/", )?must be a plain http:\/\/ URL on a loopback address/],
    ['an unknown stop signal', { processes: { a: { command: ['a'], stopSignal: 'SIGFOO' } } }, /processes\.a\.stopSignal: "SIGFOO" is not a signal to stop with/],
    ['a bad restart policy', { processes: { a: { command: ['a'], restart: 'sometimes' } } }, /processes\.a\.restart/],
    ['a preset parameter that is wrong, named under processes', { processes: { db: { preset: 'postgres', with: { prot: 1 } } } }, /processes\.db\.with\.prot: not a parameter of the postgres preset/],
    ['two processes writing the same file', { output: { dir: '/dev/shm/x' }, processes: { a: { command: ['a'], files: [{ name: 'f.txt', template: 'x' }] }, b: { command: ['b'], files: [{ name: 'f.txt', template: 'y' }] } } }, /processes\.b: writes "f\.txt", which processes\.a writes too/],
    ['a process after a server-mode psk listener', { secrets: PSK_SECRETS, processes: { a: { command: ['a'], after: ['psk'] } }, psk: psk('server') }, /processes\.a\.after: listener psk fronts the processes and opens after every one of them; a cannot wait for it/],
    ['a process named psk beside psk:', { secrets: PSK_SECRETS, processes: { psk: { command: ['a'] } }, psk: psk('client') }, /processes\.psk: the name psk is also a listener's \(psk\); rename the process/],
    ['run.stopSignal that is not a signal', { run: { command: ['x'], stopSignal: 'NOPE' } }, /run\.stopSignal: "NOPE" is not a signal to stop with/],
  ];
  test('the psk listener is a unit: after every process in server mode, first in client mode', async () => {
    const write = (config: Record<string, unknown>) => {
      const file = join(dir, `c${n++}.json`);
      writeFileSync(file, JSON.stringify(config));
      return checkText(file);
    };
    assert.match(await write({ secrets: PSK_SECRETS, processes: { a: { command: ['a'] }, b: { command: ['b'] } }, psk: psk('server') }), /start order: a, b, psk /);
    assert.match(await write({ secrets: PSK_SECRETS, processes: { app: { command: ['app'], after: ['psk'] } }, psk: psk('client') }), /start order: psk, app /);
  });

  test('a bad config through the command line: one line on stderr naming the field, exit 78', async () => {
    const { code, out, err } = await check(bad[0]![1]);
    assert.equal(code, 78, out);
    assert.equal(err.split('\n').length, 1, err);
    assert.match(err, /^tee-init check: config .*: processes\.a\.after: a cycle/);
  });

  // The same code path in-process (checkText is what check runs), to keep the suite fast.
  for (const [what, config, message] of bad) {
    test(`${what}: a config error (78) naming the field`, async () => {
      const file = join(dir, `c${n++}.json`);
      writeFileSync(file, JSON.stringify(config));
      await assert.rejects(checkText(file), (e: unknown) => e instanceof InitError && e.exitCode === 78 && message.test(e.message) && !e.message.includes('\n'));
    });
  }
});
