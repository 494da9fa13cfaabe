// Secret generations in the output directory (issue 14; docs/operations.md "Secret files: generations behind `..data`"):
// OUT/NAME -> ..data/NAME, ..data -> ..<UTC time>, swapped with one rename(2); old generations
// zeroed through the fds the init kept. The child (uid 65534, a real process) attacks the names.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statfsSync, statSync, writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as turn } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { Cleanup } from '../../src/lib/cleanup.ts';
import { InitError } from '../../src/lib/errors.ts';
import { OutputDir, type SecretFile } from '../../src/materialize/output-dir.ts';
import { Lines } from '../helpers/lines.ts';
import { memoryLog } from '../helpers/log.ts';
import { isRoot, needs } from '../helpers/tools.ts';

const NOBODY = 65534;
const READER = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'generation-reader.py');
const { log } = memoryLog('warn');
const configError = (pattern: RegExp) => (e: unknown) => e instanceof InitError && e.exitCode === 78 && pattern.test(e.message) && !e.message.includes('\n');
const GEN = /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}$/;

const pair = (n: number, size = 64): SecretFile[] => ['cert', 'key'].map((kind) => ({
  name: `${kind}.pem`,
  data: Buffer.from(`${kind}:${n}:${'x'.repeat(size)}:${kind}:${n}:end\n`),
  mode: kind === 'key' ? 0o400 : 0o440,
  what: `secret ${kind}`,
}));
const generationsIn = (dir: string) => readdirSync(dir).filter((n) => GEN.test(n)).sort();
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A parent like /dev/shm (world-writable, sticky) so that the child may keep things next to OUT. */
function parentDir(t: TestContext): string {
  const parent = mkdtempSync('/dev/shm/tee-init-gen-test-');
  chmodSync(parent, 0o1777);
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  return parent;
}

/** Hard links (made by the test, beside OUT) to the current generation's files: they show the zeroing. */
function keepLinks(out: OutputDir, parent: string, tag: string): string[] {
  return ['cert.pem', 'key.pem'].map((f) => {
    const keep = join(parent, `kept-${tag}-${f}`);
    linkSync(join(out.path, '..data', f), keep);
    return keep;
  });
}
const zeroed = (paths: string[]) => {
  for (const p of paths) assert.equal(readFileSync(p).length, 0, `${p} is zeroed and truncated`);
};

function needsRoot(t: TestContext, why: string): boolean {
  if (isRoot) return true;
  if (process.env.CI) throw new Error(`needs root (${why}): CI must run as root`);
  t.skip(`needs root (${why})`);
  return false;
}

/** Root, and setpriv to start the child as another uid. */
const needsChild = (t: TestContext) => needsRoot(t, 'a child of another uid') && needs(t, 'setpriv', 'apt-get install util-linux');

/** The child: a shell as uid/gid 65534 in OUT, a real process. */
function asNobody(cwd: string, script: string): void {
  const r = spawnSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', 'sh', '-ec', script], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `the child's script failed: ${r.stderr}`);
}

/** A root-owned directory the child may point names at; it must come out of every test unchanged. */
function victim(parent: string): { dir: string; intact: () => void } {
  const dir = join(parent, 'victim');
  mkdirSync(dir, { mode: 0o755 });
  for (const f of ['cert.pem', 'key.pem', 'precious']) writeFileSync(join(dir, f), `root's ${f}`, { mode: 0o644 });
  return {
    dir,
    intact() {
      assert.deepEqual(readdirSync(dir).sort(), ['cert.pem', 'key.pem', 'precious']);
      for (const f of ['cert.pem', 'key.pem', 'precious']) assert.equal(readFileSync(join(dir, f), 'utf8'), `root's ${f}`);
    },
  };
}

test('publish: OUT/NAME -> ..data/NAME -> a 0700 generation; a second publish swaps ..data only; retire zeroes the old one', (t) => {
  const parent = parentDir(t);
  const cleanup = new Cleanup();
  const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false }, cleanup, log);

  assert.deepEqual([...out.publish([])], [], 'no secret files: nothing at all');
  assert.deepEqual(readdirSync(out.path), []);
  assert.equal(out.generations, 0);

  const paths = out.publish(pair(1));
  assert.deepEqual([...paths], [['cert.pem', join(out.path, 'cert.pem')], ['key.pem', join(out.path, 'key.pem')]]);
  const [first] = generationsIn(out.path);
  assert.deepEqual(readdirSync(out.path).sort(), [first, '..data', 'cert.pem', 'key.pem'].sort(), 'no ..data_tmp left');
  assert.equal(readlinkSync(join(out.path, '..data')), first);
  assert.equal(readlinkSync(join(out.path, 'cert.pem')), '..data/cert.pem');
  assert.equal(lstatSync(join(out.path, first!)).mode & 0o7777, 0o700);
  assert.equal(statSync(join(out.path, 'key.pem')).mode & 0o7777, 0o400);
  assert.equal(statSync(join(out.path, 'cert.pem')).mode & 0o7777, 0o440);
  assert.equal(readFileSync(join(out.path, 'key.pem'), 'utf8'), pair(1)[1]!.data.toString());
  const link = lstatSync(join(out.path, 'cert.pem')).ino;
  const old = keepLinks(out, parent, 'first');

  out.publish(pair(2));
  const gens = generationsIn(out.path);
  assert.equal(gens.length, 2);
  const second = gens.find((g) => g !== first)!;
  assert.equal(readlinkSync(join(out.path, '..data')), second);
  assert.equal(lstatSync(join(out.path, 'cert.pem')).ino, link, 'the visible symlink is never replaced');
  assert.equal(readFileSync(join(out.path, 'cert.pem'), 'utf8'), pair(2)[0]!.data.toString());
  assert.equal(readFileSync(join(out.path, first!, 'cert.pem'), 'utf8'), pair(1)[0]!.data.toString(), 'the old generation is untouched until retired');
  assert.equal(out.generations, 2);

  out.retireOld();
  assert.equal(out.generations, 1);
  zeroed(old);
  assert.deepEqual(generationsIn(out.path), [second]);
  out.retireOld();
  assert.equal(out.generations, 1, 'idempotent');
  assert.equal(readFileSync(join(out.path, 'key.pem'), 'utf8'), pair(2)[1]!.data.toString());
  cleanup.run();
  assert.equal(existsSync(out.path), false);
});

test('with an owner (as root): files, generation directories and OUT belong to it with their modes', (t) => {
  if (!needsChild(t)) return;
  const parent = parentDir(t);
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false, owner: { uid: NOBODY, gid: NOBODY } }, cleanup, log);
  out.publish(pair(1));
  out.publish(pair(2));
  for (const g of generationsIn(out.path)) {
    const st = lstatSync(join(out.path, g));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [NOBODY, NOBODY, 0o700], g);
    for (const [f, mode] of [['cert.pem', 0o440], ['key.pem', 0o400]] as const) {
      const fst = lstatSync(join(out.path, g, f));
      assert.deepEqual([fst.isFile(), fst.uid, fst.gid, fst.mode & 0o7777], [true, NOBODY, NOBODY, mode], `${g}/${f}`);
    }
  }
  const st = statSync(out.path);
  assert.deepEqual([st.uid, st.mode & 0o7777], [NOBODY, 0o700]);
  // The child reads its files through the visible paths (and nothing else is readable by others).
  asNobody(out.path, 'cat cert.pem key.pem >/dev/null; cat ..data/key.pem >/dev/null');
});

test('names beginning with ".." are refused for secret and rendered files; two secrets cannot share a name', (t) => {
  const parent = parentDir(t);
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false }, cleanup, log);
  assert.throws(() => out.write('..data', Buffer.from('x'), 0o400, 'rendered file ..data'), configError(/^rendered file \.\.data: file name \.\.data begins with "\.\.", which is reserved/));
  assert.throws(() => out.publish([{ name: '..2026_01_01_00_00_00.000000000', data: Buffer.from('x'), mode: 0o400, what: 'secret s' }]), configError(/^secret s: file name \.\.2026.* begins with "\.\."/));
  const [a, b] = pair(1);
  assert.throws(() => out.publish([a!, { ...b!, name: 'cert.pem' }]), configError(/^secret key: file name cert\.pem is used by two secrets$/));
  assert.deepEqual(readdirSync(out.path), [], 'nothing was made');
  // A rendered file cannot take a secret's visible name either.
  out.publish(pair(1));
  assert.throws(() => out.write('cert.pem', Buffer.from('x'), 0o400, 'rendered file cert.pem'), configError(/cannot create .*cert\.pem: something is already in the way/));
});

test('the tmpfs full half-way through a generation: 78 in one line, the previous generation stays in use, the new one is gone', (t) => {
  if (!needsRoot(t, 'mount a small tmpfs')) return;
  const mnt = mkdtempSync('/dev/shm/tee-init-gen-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', mnt]);
  t.after(() => {
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  const cleanup = new Cleanup();
  const out = OutputDir.create({ dir: mnt, allowNonTmpfs: false }, cleanup, log);
  out.publish(pair(1));
  const before = generationsIn(mnt);
  const free = statfsSync(mnt).bfree;
  const big = [{ ...pair(2)[0]!, data: Buffer.alloc(128 << 10, 'c') }, { ...pair(2)[1]!, data: Buffer.alloc(256 << 10, 'k') }];
  assert.throws(() => out.publish(big), configError(/^secret key: cannot write .*\/key\.pem: ENOSPC \(the output directory's tmpfs is full: give it more room\)$/));
  assert.deepEqual(generationsIn(mnt), before, 'the half-written generation is removed');
  assert.equal(statfsSync(mnt).bfree, free, 'all its space is back');
  assert.equal(readlinkSync(join(mnt, '..data')), before[0]);
  assert.equal(readFileSync(join(mnt, 'cert.pem'), 'utf8'), pair(1)[0]!.data.toString());
  assert.equal(out.generations, 1);
  assert.equal(readdirSync(mnt).includes('..data_tmp'), false);
  cleanup.run();
  assert.deepEqual(readdirSync(mnt), [], 'the mount point is kept, empty');
});

test('wipe after 3 publishes, 2 not retired: every file of every generation zeroed, the directory removed', (t) => {
  const parent = parentDir(t);
  const cleanup = new Cleanup();
  const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false }, cleanup, log);
  const kept: string[] = [];
  for (let i = 1; i <= 3; i++) {
    out.publish(pair(i));
    kept.push(...keepLinks(out, parent, `g${i}`));
  }
  out.write('redis.conf', Buffer.from('tls-cert-file x'), 0o400, 'rendered file redis.conf');
  assert.equal(out.generations, 3);
  cleanup.run();
  zeroed(kept);
  assert.equal(existsSync(out.path), false);
  assert.equal(out.generations, 0);
  assert.throws(() => out.publish(pair(4)), /already wiped/);
  out.retireOld(); // harmless after the wipe
});

// The child is not trusted: it owns OUT and everything in it (owner 65534) and replaces the
// init's names. Decisions: ..data and ..data_tmp are the init's reserved names, so a publish
// replaces whatever is there (by rename/unlink of the name: never followed); a visible OUT/NAME
// that is no longer the init's symlink makes the publish fail in one line (the refresh keeps the
// old generation) instead of silently taking the name back from the program.

function hostileSetup(t: TestContext) {
  const parent = parentDir(t);
  const target = victim(parent);
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false, owner: { uid: NOBODY, gid: NOBODY } }, cleanup, log);
  return { parent, target, cleanup, out };
}

test('the child points ..data (and ..data_tmp) at directories of its own or root\'s: publish takes its names back, the wipe follows nothing', (t) => {
  if (!needsChild(t)) return;
  const { parent, target, cleanup, out } = hostileSetup(t);
  out.publish(pair(1));
  const kept = keepLinks(out, parent, 'g1');
  asNobody(out.path, `mkdir ../mine; echo child > ../mine/cert.pem; ln -sfn ../mine ..data; ln -s ${target.dir} ..data_tmp`);
  assert.equal(readFileSync(join(out.path, 'cert.pem'), 'utf8'), 'child\n', 'the child did redirect the visible path');

  out.publish(pair(2));
  kept.push(...keepLinks(out, parent, 'g2'));
  assert.match(readlinkSync(join(out.path, '..data')), GEN);
  assert.equal(readFileSync(join(out.path, 'cert.pem'), 'utf8'), pair(2)[0]!.data.toString());
  assert.equal(readFileSync(join(parent, 'mine', 'cert.pem'), 'utf8'), 'child\n', 'the child\'s directory is untouched');
  target.intact();

  asNobody(out.path, `ln -sfn ${target.dir} ..data; ln -s ${target.dir} ..data_tmp; ln -s /etc ..zz`);
  cleanup.run();
  target.intact();
  assert.equal(readFileSync(join(parent, 'mine', 'cert.pem'), 'utf8'), 'child\n');
  zeroed(kept);
  assert.equal(existsSync(out.path), false);
});

test('a visible name replaced by a symlink to /etc/passwd: the publish fails in one line, the old generation stays, nothing outside is touched', (t) => {
  if (!needsChild(t)) return;
  const { parent, cleanup, out } = hostileSetup(t);
  const passwd = sha('/etc/passwd');
  out.publish(pair(1));
  const kept = keepLinks(out, parent, 'g1');
  const current = readlinkSync(join(out.path, '..data'));
  asNobody(out.path, 'ln -sf /etc/passwd key.pem');

  assert.throws(() => out.publish(pair(2)), configError(/^secret key: .*\/out\/key\.pem is no longer the symlink to \.\.data\/key\.pem that tee-init made \(now another symlink\): something in the container replaced it; the new generation is not published$/));
  assert.equal(sha('/etc/passwd'), passwd);
  assert.equal(readlinkSync(join(out.path, '..data')), current, '..data still points at the old generation');
  assert.deepEqual(generationsIn(out.path), [current], 'the refused generation is zeroed and removed');
  assert.equal(out.generations, 1);
  assert.equal(readFileSync(join(out.path, 'cert.pem'), 'utf8'), pair(1)[0]!.data.toString());

  asNobody(out.path, 'rm key.pem; echo child > key.pem');
  assert.throws(() => out.publish(pair(3)), configError(/key\.pem is no longer the symlink .* \(now a file\)/));
  asNobody(out.path, 'rm key.pem');
  assert.throws(() => out.publish(pair(3)), configError(/key\.pem is no longer the symlink .* \(now missing\)/));
  asNobody(out.path, 'ln -s /etc/passwd key.pem');
  cleanup.run();
  assert.equal(sha('/etc/passwd'), passwd);
  zeroed(kept);
  assert.equal(existsSync(out.path), false);
});

test('..data replaced by a directory of the child\'s: the publish fails in one line and leaves no trace; the wipe removes it', (t) => {
  if (!needsChild(t)) return;
  const { parent, cleanup, out } = hostileSetup(t);
  out.publish(pair(1));
  const kept = keepLinks(out, parent, 'g1');
  const current = readlinkSync(join(out.path, '..data'));
  asNobody(out.path, 'rm ..data; mkdir ..data; echo child > ..data/cert.pem');
  assert.throws(() => out.publish(pair(2)), configError(/^secret files: cannot point .*\/out\/\.\.data at the new generation \(a directory is in the way: something in the container replaced it\); the new generation is not published$/));
  assert.deepEqual(generationsIn(out.path), [current]);
  assert.equal(readdirSync(out.path).includes('..data_tmp'), false);
  assert.equal(out.generations, 1);
  cleanup.run();
  zeroed(kept);
  assert.equal(existsSync(out.path), false);
});

test('an old generation moved away and replaced by a symlink to a root directory: retire and wipe zero it where it went and touch nothing else', (t) => {
  if (!needsChild(t)) return;
  const { log: warnings, records } = memoryLog('warn');
  const parent = parentDir(t);
  const target = victim(parent);
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false, owner: { uid: NOBODY, gid: NOBODY } }, cleanup, warnings);
  out.publish(pair(1));
  const kept = keepLinks(out, parent, 'g1');
  const first = readlinkSync(join(out.path, '..data'));
  out.publish(pair(2));
  kept.push(...keepLinks(out, parent, 'g2'));
  asNobody(out.path, `mv ${first} ../stolen; ln -s ${target.dir} ${first}`);

  out.retireOld();
  zeroed(kept.slice(0, 2));
  target.intact();
  assert.deepEqual(readdirSync(join(parent, 'stolen')), [], 'the moved generation is emptied through its fd');
  assert.equal(out.generations, 1);
  assert.ok(records().some((r) => /^secret generation \.\..* is zeroed, but its directory was changed by someone else/.test(String(r.message))));
  cleanup.run();
  target.intact();
  zeroed(kept);
  assert.equal(existsSync(out.path), false);
});

test('a reader in another process never sees a missing, empty or half-written file across 200 swaps, and never a mixed pair through ..data', async (t) => {
  if (!needs(t, '/usr/bin/python3', 'apt-get install python3')) return;
  const parent = parentDir(t);
  const cleanup = new Cleanup();
  t.after(() => cleanup.run());
  const out = OutputDir.create({ dir: join(parent, 'out'), allowNonTmpfs: false }, cleanup, log);
  const SIZE = 16 << 10; // several pages: a torn write would show
  out.publish(pair(0, SIZE));
  const reader = spawn('/usr/bin/python3', [READER, out.path, String(SIZE)], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => reader.kill());
  const lines = new Lines(reader.stdout);
  assert.equal(await lines.next(), 'ready');
  for (let i = 1; i <= 200; i++) {
    out.publish(pair(i, SIZE));
    await turn(); // the publish is synchronous; the reader runs in parallel on the other core
  }
  reader.stdin.end();
  const seen = JSON.parse(await lines.next()) as { reads: number; errors: string[]; error_count: number; straddles: number; mismatched_pairs: number; generations_seen: number };
  t.diagnostic(`reader: ${seen.reads} reads, ${seen.generations_seen} generations seen, ${seen.straddles} visible-path pairs straddled a swap (allowed)`);
  assert.deepEqual(seen.errors, [], `${seen.error_count} bad reads`);
  assert.equal(seen.mismatched_pairs, 0);
  assert.ok(seen.generations_seen >= 2, `the reader raced the swaps (saw ${seen.generations_seen} generations)`);
  assert.equal(out.generations, 201);
  out.retireOld();
  assert.equal(out.generations, 1);
  assert.equal(generationsIn(out.path).length, 1);
});

/** Bytes this process has passed to write(2) so far (all its threads). */
const written = () => Number(/^wchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

test('a child that makes its key file (and a file of its own) 64 MiB sparse: rotation and wipe write only what the init wrote', (t) => {
  if (!needsChild(t)) return;
  const { parent, cleanup, out } = hostileSetup(t);
  out.publish(pair(1));
  const old = keepLinks(out, parent, 'old');
  // The child owns its files: it may make them writable and give them any size (a hole costs nothing).
  asNobody(out.path, 'chmod u+w ..data/key.pem && truncate -s 64M ..data/key.pem && truncate -s 64M own.bin');
  assert.equal(statSync(old[1]!).size, 64 << 20);
  out.publish(pair(2));
  let before = written();
  out.retireOld();
  const byRetire = written() - before;
  zeroed(old);
  asNobody(out.path, 'chmod u+w ..data/cert.pem && truncate -s 64M ..data/cert.pem');
  before = written();
  cleanup.run();
  const byWipe = written() - before;
  assert.ok(byRetire < 1 << 20, `the rotation wrote ${byRetire} bytes (the files held ${pair(1).reduce((n, f) => n + f.data.length, 0)})`);
  assert.ok(byWipe < 1 << 20, `the wipe wrote ${byWipe} bytes`);
  assert.equal(existsSync(out.path), false);
});
