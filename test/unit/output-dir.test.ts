import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Cleanup } from '../../src/cleanup.ts';
import { InitError } from '../../src/errors.ts';
import { OutputDir } from '../../src/materialize/output-dir.ts';
import { memoryLog } from '../helpers/log.ts';

const { log } = memoryLog('warn');
const shm = () => mkdtempSync('/dev/shm/tee-init-test-');
const configError = (pattern: RegExp) => (e: unknown) => e instanceof InitError && e.exitCode === 78 && pattern.test(e.message);

test('a fresh directory under /dev/shm by default: 0700, files 0400 verified, all wiped', () => {
  const cleanup = new Cleanup();
  const out = OutputDir.create({ allowNonTmpfs: false }, cleanup, log);
  assert.match(out.path, /^\/dev\/shm\/tee-init-/);
  assert.equal(statSync(out.path).mode & 0o777, 0o700);
  const file = out.write('server.key', Buffer.from('secret bytes'), 0o400, 'secret key');
  assert.equal(statSync(file).mode & 0o7777, 0o400);
  assert.equal(readFileSync(file, 'utf8'), 'secret bytes');
  out.write('ca.pem', Buffer.from('ca'), 0o440, 'secret ca');
  assert.equal(statSync(join(out.path, 'ca.pem')).mode & 0o7777, 0o440);
  cleanup.run();
  assert.equal(existsSync(out.path), false);
});

test('output.dir is created, and a non-tmpfs directory is refused (78), leaving nothing', () => {
  const parent = shm();
  try {
    const cleanup = new Cleanup();
    const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false }, cleanup, log);
    assert.equal(out.path, join(parent, 'out'));
    cleanup.run();
    assert.deepEqual(readdirSync(parent), []);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
  const disk = mkdtempSync(join(process.cwd(), '.tee-init-disk-'));
  try {
    assert.throws(() => OutputDir.create({ dir: join(disk, 'out'), allowNonTmpfs: false }, new Cleanup(), log), configError(/is not on tmpfs/));
    assert.deepEqual(readdirSync(disk), [], 'the refused directory is removed again');
    const cleanup = new Cleanup();
    const out = OutputDir.create({ dir: join(disk, 'out'), allowNonTmpfs: true }, cleanup, log);
    out.write('f', Buffer.from('x'), 0o400, 'f');
    cleanup.run();
    assert.deepEqual(readdirSync(disk), []);
  } finally {
    rmSync(disk, { recursive: true, force: true });
  }
});

test('an existing empty directory (a tmpfs mount point) is used and kept; a non-empty one is refused', () => {
  const dir = shm();
  try {
    const cleanup = new Cleanup();
    const out = OutputDir.create({ dir, allowNonTmpfs: false }, cleanup, log);
    out.write('a', Buffer.from('1'), 0o400, 'a');
    cleanup.run();
    assert.ok(existsSync(dir), 'a directory we did not create stays');
    assert.deepEqual(readdirSync(dir), []);
    writeFileSync(join(dir, 'stray'), 'x');
    assert.throws(() => OutputDir.create({ dir, allowNonTmpfs: false }, new Cleanup(), log), configError(/exists and is not empty/));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a symlink in place of the directory or of a file is an error, never a target', () => {
  const parent = shm();
  try {
    const target = join(parent, 'elsewhere');
    mkdirSync(target);
    symlinkSync(target, join(parent, 'out'));
    assert.throws(() => OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false }, new Cleanup(), log), configError(/not a directory \(a symlink or file is in the way\)/));

    const cleanup = new Cleanup();
    const out = OutputDir.create({ dir: join(parent, 'real'), allowNonTmpfs: false }, cleanup, log);
    symlinkSync(join(target, 'stolen'), join(out.path, 'server.key'));
    assert.throws(() => out.write('server.key', Buffer.from('k'), 0o400, 'secret key'), configError(/secret key: cannot create .*server\.key: something is already in the way/));
    assert.equal(existsSync(join(target, 'stolen')), false, 'nothing written through the symlink');
    cleanup.run();
    assert.equal(existsSync(out.path), false);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('files the child added are wiped too; writes after the wipe are refused', () => {
  const cleanup = new Cleanup();
  const out = OutputDir.create({ allowNonTmpfs: false }, cleanup, log);
  mkdirSync(join(out.path, 'sub'));
  writeFileSync(join(out.path, 'sub', 'dump.rdb'), 'child data');
  cleanup.run();
  assert.equal(existsSync(out.path), false);
  assert.throws(() => out.write('late', Buffer.from('x'), 0o400, 'late'), /already wiped/);
});

test('the parent must exist', () => {
  assert.throws(() => OutputDir.create({ dir: '/dev/shm/no-such-parent-xyz/out', allowNonTmpfs: false }, new Cleanup(), log), configError(/its parent .* does not exist/));
});
