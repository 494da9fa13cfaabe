// `source: file` secrets that are not plain small files (issue 8, item 4): the real bundle
// refuses each in one line with a documented status, fast, reading at most 64 KiB + 1 bytes,
// starting nothing; `tee-init check` refuses the same files the same way.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bundle, node, runInit, startCommand } from '../helpers/init.ts';
import { copiesForOtherUsers, nodeForOtherUsers } from '../helpers/node-for-others.ts';
import { isRoot, needs } from '../helpers/tools.ts';

let dir: string;
let marker: string;

before(() => {
  dir = mkdtempSync('/dev/shm/tee-init-file-secrets-');
  chmodSync(dir, 0o755);
  marker = join(dir, 'child-started');
});
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function config(path: string, extra: Record<string, unknown> = {}): string {
  const file = join(dir, `config-${n++}.json`);
  writeFileSync(file, JSON.stringify({ secrets: { dbpass: { source: 'file', path, ...extra } }, run: { command: ['touch', marker] } }));
  chmodSync(file, 0o644);
  return file;
}

/** Boots and checks with the same config: same status, one line naming the secret and the path. */
async function refused(path: string, status: number, pattern: RegExp) {
  const cfg = config(path);
  const { code, log, result } = await runInit(['--config', cfg]);
  assert.equal(code, status, log.text);
  const errors = log.records.filter((r) => r.severity === 'ERROR');
  assert.equal(errors.length, 1, log.text);
  assert.match(errors[0]!.message, pattern);
  assert.equal(existsSync(marker), false, 'no child started');
  const check = await runInit(['check', '--config', cfg]);
  assert.equal(check.code, status, String(check.result.stderr));
  const lines = String(check.result.stderr).trim().split('\n');
  assert.equal(lines.length, 1, String(check.result.stderr));
  assert.match(lines[0]!, pattern);
  return { result, log };
}

describe('source: file refuses what is not a small regular file', () => {
  test('/dev/zero: 78 at once, without reading it (peak RSS stays that of an idle init)', async (t) => {
    if (!needs(t, '/usr/bin/time', 'apt-get install time')) return;
    const { proc, log } = startCommand(['/usr/bin/time', '-f', 'maxrss_kb=%M', node, '--disable-sigusr1', bundle, '--config', config('/dev/zero')]);
    const result = await proc;
    assert.equal(result.exitCode, 78, log.text);
    assert.match(log.find('secret dbpass')!.message, /^config \S+: secret dbpass: \/dev\/zero is a character device, not a regular file \(secrets\.dbpass\.path\)$/);
    const rss = Number(/maxrss_kb=(\d+)/.exec(log.text)![1]);
    assert.ok(rss < 200_000, `peak RSS ${rss} KiB`);
    assert.equal(existsSync(marker), false);
  });

  test('a FIFO with no writer: 78 in one line, nothing waits for a writer', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await refused(fifo, 78, /^(tee-init check: )?(config \S+: )?secret dbpass: .*\/fifo is a FIFO \(named pipe\), not a regular file \(secrets\.dbpass\.path\)$/);
  });

  test('a directory: 78', async () => {
    const d = join(dir, 'a-dir');
    mkdirSync(d);
    await refused(d, 78, /^(tee-init check: )?(config \S+: )?secret dbpass: .*\/a-dir is a directory, not a regular file/);
  });

  test('a missing file: 78', async () => {
    await refused(join(dir, 'nope'), 78, /^(tee-init check: )?(config \S+: )?secret dbpass: file .*\/nope does not exist \(secrets\.dbpass\.path\)$/);
  });

  test('64 KiB + 1 bytes, and a 10 GB sparse file: 65 naming the secret, without reading 10 GB', async () => {
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(64 * 1024 + 1, 0x41));
    await refused(big, 65, /^(tee-init check: )?(config \S+: )?secret dbpass \(.*\/big\) is 65537 bytes: more than a secret can hold \(64 KiB\)$/);
    const sparse = join(dir, 'sparse');
    writeFileSync(sparse, '');
    truncateSync(sparse, 10 * 1024 ** 3);
    await refused(sparse, 65, /^(tee-init check: )?(config \S+: )?secret dbpass \(.*\/sparse\) is 10737418240 bytes: more than a secret can hold/);
  });

  test('a file tee-init cannot read: 78 naming it and the uid', async (t) => {
    if (!isRoot) return t.skip('needs root, to run the init as another uid');
    if (!needs(t, 'setpriv', 'apt-get install util-linux')) return;
    const secret = join(dir, 'root-only');
    writeFileSync(secret, 'pw', { mode: 0o600 });
    const cfg = config(secret);
    // Node and the bundle at paths nobody can reach (a clone under root's 0700 home is not).
    const nodeCopy = nodeForOtherUsers();
    const dist = copiesForOtherUsers({ dist: dirname(bundle) });
    t.after(() => (nodeCopy.remove(), dist.remove()));
    const asNobody = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', nodeCopy.path, '--disable-sigusr1', join(dist.path('dist'), 'tee-init.js')];
    const boot = await startCommand([...asNobody, '--config', cfg]).proc;
    assert.equal(boot.exitCode, 78, String(boot.stderr));
    assert.match(String(boot.stderr), /"message":"(config \S+: )?secret dbpass: file .*\/root-only cannot be read by tee-init \(uid 65534\): permission denied \(secrets\.dbpass\.path\)"/);
    const check = await startCommand([...asNobody, 'check', '--config', cfg]).proc;
    assert.equal(check.exitCode, 78);
    assert.match(String(check.stderr), /^tee-init check: (config \S+: )?secret dbpass: file .*\/root-only cannot be read by tee-init \(uid 65534\): permission denied/);
    assert.equal(existsSync(marker), false);
  });
});

test('a symlink to a regular file (how podman mounts secrets) and exactly 64 KiB: accepted', async () => {
  const target = join(dir, 'real-secret');
  writeFileSync(target, Buffer.alloc(64 * 1024, 0x42));
  const link = join(dir, 'linked-secret');
  symlinkSync(target, link);
  const { code, log } = await runInit(['--config', config(link)]);
  assert.equal(code, 0, log.text);
  assert.ok(existsSync(marker));
  rmSync(marker);
});
