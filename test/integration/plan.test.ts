// One plan for `check` and the boot (src/plan/): each problem the boot finds before its first
// network call, check finds too, with the same first line; check shows them all in one pass;
// `--show` prints what each program really gets. Each case below was a disagreement once.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { runInit } from '../helpers/init.ts';

type Config = Record<string, unknown>;

describe('the plan: check and the boot agree', () => {
  let b: Boot;
  let held: Server;
  let heldPort: number;
  // Directories prepared "by someone else", beside the boot's own (whose leftovers are checked).
  const elsewhere = mkdtempSync('/dev/shm/tee-init-plan-test-');
  before(async () => {
    b = await boot();
    // A port in use, as another process would hold it.
    held = createServer();
    await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
    heldPort = (held.address() as { port: number }).port;
  });
  after(async () => {
    held.close();
    await b.close();
    rmSync(elsewhere, { recursive: true, force: true });
  });

  /** check, then a boot of the same config: their exit codes, check's problem lines, the boot's error. */
  async function both(config: Config, args: string[] = []) {
    const file = b.writeConfig(config);
    const checked = await runInit(['check', '--config', file, ...args]);
    b.world.gcp.requests.length = 0;
    const booted = await runInit(['--config', file, ...args], { env: { NO_PROXY: '127.0.0.1,localhost' } });
    const problems = String(checked.result.stderr).trim().split('\n').filter((l) => !l.includes(': warning: ')).map((l) => l.replace(/^tee-init check: /, ''));
    const errors = booted.log.records.filter((r) => r.severity === 'ERROR').map((r) => r.message);
    return { check: checked.code, problems, boot: booted.code, error: errors[0] ?? '', requests: b.world.gcp.requests.length, stdout: String(checked.result.stdout) };
  }

  /** Refused alike: 78 from both, before any request, the boot's line = check's first (+ "and N more"). */
  function refusedAlike(r: Awaited<ReturnType<typeof both>>, first: RegExp) {
    assert.equal(r.check, 78, r.problems.join('\n'));
    assert.equal(r.boot, 78, r.error);
    assert.match(r.problems[0]!, first);
    assert.equal(r.error.replace(/ \(and \d+ more: run tee-init check --config \S+ to see them all\)$/, ''), r.problems[0]);
    assert.equal(r.requests, 0, 'the boot contacted nothing');
    assert.deepEqual(b.leftovers(), [], 'nothing left on disk');
  }

  test('three mistakes of three stages: check shows all three at once; the boot stops at the first, before any fetch', async () => {
    const dir = join(elsewhere, 'not-empty');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stale'), 'x');
    const r = await both(b.config({
      output: { dir },
      run: { command: ['server', '{{secrets.nope.path}}'], user: 'no-such-user' },
    }));
    refusedAlike(r, /run\.user: /);
    assert.equal(r.problems.length, 3, r.problems.join('\n'));
    assert.match(r.problems[1]!, /output\.dir \S+ exists and is not empty/);
    assert.match(r.problems[2]!, /run\.command\[1\].*nope/);
    assert.match(r.error, /\(and 2 more: run tee-init check --config \S+ to see them all\)$/);
  });

  test('a render problem (unknown placeholder) is 78 before the fetch, not after it', async () => {
    refusedAlike(await both(b.config({ run: { command: ['server', '{{secrets.nope.path}}'] } })), /run\.command\[1\]/);
  });

  test('a path placeholder for a secret kept in memory is refused before the fetch', async () => {
    refusedAlike(await both(b.config({ run: { command: ['server', '{{secrets.share_a.path}}'] } })), /share_a/);
  });

  test('a PSK identity with one share (not shamir): refused by check and the boot alike', async () => {
    const psk = { mode: 'server', listen: '127.0.0.1:0', connect: '127.0.0.1:1', identities: { alice: { shares: ['share_a'], combine: 'sha256-concat' } } };
    refusedAlike(await both(b.config({ psk })), /psk\.identities\.alice\.shares: needs at least 2 shares, got 1/);
  });

  test('a non-empty output.dir: refused by check too', async () => {
    const dir = join(elsewhere, 'not-empty-2');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'stale'), 'x');
    refusedAlike(await both(b.config({ output: { dir } })), /output\.dir \S+ exists and is not empty/);
  });

  test('health.listen on a port in use: 78 from check and the boot, before anything is read', async () => {
    refusedAlike(await both(b.config({ health: { listen: `127.0.0.1:${heldPort}` } })), new RegExp(`health\\.listen: 127\\.0\\.0\\.1:${heldPort} is in use by another process`));
  });

  test('a listener on a port in use: 78 from check and the boot, before anything is read', async () => {
    const psk = { mode: 'server', listen: `127.0.0.1:${heldPort}`, connect: '127.0.0.1:1', identities: { alice: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } };
    refusedAlike(await both(b.config({ psk })), new RegExp(`psk\\.listen: 127\\.0\\.0\\.1:${heldPort} is in use`));
  });

  test('PostgreSQL without user: as root is refused by both (postgres and initdb refuse root themselves)', async () => {
    const r = await both(b.config({ processes: { db: { preset: 'postgres' } }, run: undefined }));
    if (process.geteuid!() === 0) refusedAlike(r, /processes\.db\.user: not set, and tee-init runs as root: postgres refuses to run as root; set processes\.db\.user: postgres/);
    else assert.doesNotMatch(r.problems.join('\n'), /refuses to run as root/, 'not root: nothing to refuse');
  });

  test('--show: env: true listeners\' variables are in the program\'s env; rotation lines only with refresh:', async () => {
    const listeners = { egress: { type: 'http-proxy', listen: '127.0.0.1:18088', env: true, routes: [{ hosts: ['api.example.com'], address: '127.0.0.1:1' }] } };
    const file = b.writeConfig(b.config({ listeners, run: { preset: 'redis' } }));
    const { result, code } = await runInit(['check', '--show', '--config', file]);
    assert.equal(code, 0, String(result.stderr));
    const out = String(result.stdout);
    const shown = out.slice(out.indexOf('# what the program gets (--show)'));
    assert.match(shown, /^ {2}env:\n(?: {4}\S+: .*\n)* {4}HTTP_PROXY: http:\/\/127\.0\.0\.1:18088\n/m);
    assert.match(shown, /^ {4}NO_PROXY: /m);
    assert.match(out, /^program env +HTTP_PROXY=http:\/\/127\.0\.0\.1:18088 \(from the listeners, env: true\)$/m);
    assert.doesNotMatch(out, /on rotation/, 'nothing rotates without refresh:');
    const refreshing = await runInit(['check', '--config', b.writeConfig(b.config({ run: { preset: 'redis' }, refresh: { every: '1h' } }))]);
    assert.match(String(refreshing.result.stdout), /on rotation: run redis-cli/);
  });
});
