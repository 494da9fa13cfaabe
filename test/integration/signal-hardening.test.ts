// Signals the init must survive (issue 8, items 2 and 9) and spawn refusals that are the
// user's input, not a bug in the init (item 7).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Lines } from '../helpers/lines.ts';
import { node, root, runInit, startInit } from '../helpers/init.ts';

const catcher = join(root, 'test', 'fixtures', 'signal-catcher.mjs');
const bit = (signal: number) => 1n << BigInt(signal - 1);
const SIGHUP = 1;
const SIGUSR1 = 10;

/** The set of signals `pid` catches, from /proc (0n while it is gone or not readable). */
function caught(pid: number): bigint {
  try {
    const m = /^SigCgt:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

/** Busy-polls /proc until `pid` catches `signal`: from then on JavaScript of the init is running. */
function waitUntilCaught(pid: number, signal: number, timeoutMs = 10_000): void {
  const deadline = Date.now() + timeoutMs;
  while ((caught(pid) & bit(signal)) === 0n) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} never caught signal ${signal}`);
  }
}

describe('signals while the init is still loading', () => {
  // The SIGUSR1 guard is the init's first JavaScript listener; the moment it exists, every
  // forwarded signal must have one too (before the fix, SIGHUP met its default action: 129).
  test('a SIGHUP as soon as JavaScript runs is dropped and logged; the init goes on', async () => {
    const { proc, log } = startInit(['--', 'sleep', '30']);
    waitUntilCaught(proc.pid!, SIGUSR1);
    process.kill(proc.pid!, 'SIGHUP');
    await log.waitFor('SIGHUP before the child started: dropped');
    await log.waitFor('child started');
    proc.kill('SIGTERM');
    assert.equal((await proc).exitCode, 143);
  });

  test('a SIGTERM as soon as JavaScript runs aborts the bootstrap: 143, no child', async (t) => {
    // A bootstrap that cannot finish (it waits for a token file that never comes): the SIGTERM
    // always lands before a child could start, however late the loaded machine delivers it.
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-early-term-'));
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({
      attestation: { tokenFile: join(dir, 'never'), waitFor: '60s' },
      credentials: { a: { type: 'confidential-space', provider: 'projects/111/locations/global/workloadIdentityPools/alice-pool/providers/attestation' } },
      secrets: { s: { source: 'gcp', ref: 'projects/alice-proj/secrets/s/versions/1', credentials: 'a' } },
      run: { command: ['sleep', '30'] },
    }));
    const { proc, log } = startInit(['--config', config]);
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    waitUntilCaught(proc.pid!, SIGUSR1);
    assert.notEqual(caught(proc.pid!) & bit(SIGHUP), 0n, 'SIGHUP is caught from the same instant');
    process.kill(proc.pid!, 'SIGTERM');
    const result = await proc;
    assert.equal(result.exitCode, 143);
    assert.equal(log.records.find((r) => r.message === 'child started'), undefined);
    assert.ok(log.find('SIGTERM before the child started: aborting bootstrap'), log.text);
  });
});

describe('SIGPIPE', () => {
  test("is not forwarded: the init's own log write to a closed pipe leaves the child alone", async () => {
    // Debug level, so every forwarded signal makes the init write a log line to its stderr.
    const { proc } = startInit(['--log-level', 'debug', '--', node, catcher, 'SIGHUP', 'SIGUSR2', 'SIGPIPE'], { stdout: 'pipe' });
    const out = new Lines(proc.stdout!);
    await out.until(/^ready/);
    proc.stderr!.destroy(); // the log reader goes away
    for (const sig of ['SIGHUP', 'SIGHUP', 'SIGUSR2'] as const) {
      process.kill(proc.pid!, sig);
      // Forwarded in order: a SIGPIPE raised by the log write would show up before the next one.
      assert.equal(await out.next(), `got ${sig}`);
    }
    proc.kill('SIGTERM');
    const result = await proc;
    assert.equal(result.exitCode, 143, 'the child died of the forwarded SIGTERM, not of SIGPIPE');
    assert.deepEqual(out.all.filter((l) => l.includes('SIGPIPE')), []);
  });

  test('sent from outside, it is ignored by the init and not passed on', async () => {
    const { proc, log } = startInit(['--', node, catcher, 'SIGPIPE', 'SIGUSR2'], { stdout: 'pipe' });
    const out = new Lines(proc.stdout!);
    await out.until(/^ready/);
    process.kill(proc.pid!, 'SIGPIPE');
    process.kill(proc.pid!, 'SIGUSR2');
    assert.equal(await out.next(), 'got SIGUSR2');
    proc.kill('SIGTERM');
    assert.equal((await proc).exitCode, 143, log.text);
  });
});

describe('commands the kernel refuses', () => {
  test('a 70,000-character command name: 126 and one line, not an internal error', async () => {
    const { code, log } = await runInit(['--', 'a'.repeat(70_000)]);
    assert.equal(code, 126);
    const errors = log.records.filter((r) => r.severity === 'ERROR');
    assert.equal(errors.length, 1, log.text);
    assert.match(errors[0]!.message, /cannot run "a{200}"\.\.\. \(70000 characters\): the command name or path is too long/);
  });

  test('an argument over the kernel limit (from a config): 78 naming E2BIG before anything is fetched (check says the same)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-e2big-'));
    try {
      const config = join(dir, 'c.yaml');
      writeFileSync(config, JSON.stringify({ run: { command: ['/bin/echo', 'x'.repeat(200_000)] } }));
      const { code, log } = await runInit(['--config', config]);
      assert.equal(code, 78, log.text);
      const errors = log.records.filter((r) => r.severity === 'ERROR');
      assert.equal(errors.length, 1, log.text);
      assert.match(errors[0]!.message, /run\.command\[1\]: 200000 bytes; one argument or variable may hold at most 131071 \(E2BIG\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
