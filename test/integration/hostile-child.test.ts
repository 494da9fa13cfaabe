// A child running as another uid attacks its output directory (issue 8, items 1 and 5): the
// init's wipe never reads, writes or deletes outside the directory it created, every secret
// file it wrote is zeroed wherever the child moved it, and a second init cannot share the
// directory. Real processes: the bundle as root, the child and a racer as uid 65534 (nobody).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { execa } from 'execa';
import { root, runInit, startInit } from '../helpers/init.ts';
import { copiesForOtherUsers } from '../helpers/node-for-others.ts';
import { Lines } from '../helpers/lines.ts';
import { isRoot, needs } from '../helpers/tools.ts';

const NOBODY = 65534;
let parent: string;
let sources: string;

before(() => {
  if (!isRoot && process.env.CI) throw new Error('the hostile-child tests need root in CI (a child of another uid)');
  // Like /dev/shm itself: world-writable and sticky, so the child can rename what it owns there.
  parent = mkdtempSync('/dev/shm/tee-init-hostile-');
  chmodSync(parent, 0o1777);
  sources = mkdtempSync('/dev/shm/tee-init-hostile-src-'); // 0700 root: the child cannot read the sources
  writeFileSync(join(sources, 'key'), 'KEY-SECRET-BYTES');
  writeFileSync(join(sources, 'ca'), 'CA-SECRET-BYTES');
});
after(() => {
  rmSync(parent, { recursive: true, force: true });
  rmSync(sources, { recursive: true, force: true });
});

/** A root-owned directory the child must never see the init touch. */
function victim(name: string, files: string[]): { dir: string; intact: () => void } {
  const dir = join(parent, name);
  mkdirSync(dir, { mode: 0o755 });
  for (const f of files) writeFileSync(join(dir, f), `root's ${f}`, { mode: 0o644 });
  return {
    dir,
    intact() {
      assert.deepEqual(readdirSync(dir).sort(), [...files].sort(), `${dir} lost entries`);
      for (const f of files) assert.equal(readFileSync(join(dir, f), 'utf8'), `root's ${f}`, `${dir}/${f} was changed`);
    },
  };
}

function config(out: string, script: string, extra: Record<string, unknown> = {}): string {
  const path = join(parent, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify({
    secrets: {
      key: { source: 'file', path: join(sources, 'key'), file: 'server.key' },
      ca: { source: 'file', path: join(sources, 'ca'), file: 'ca.pem' },
    },
    output: { dir: out },
    run: { command: ['sh', '-ec', script], user: String(NOBODY) },
    ...extra,
  }));
  return path;
}

test('renaming the directory, a symlink in its place, secrets linked and moved out: nothing outside is touched, the secrets are zeroed', async (t) => {
  if (!isRoot) return t.skip('needs root');
  const out = join(parent, 'out-a');
  const target = victim('victim-a', ['server.key', 'ca.pem', 'precious']);
  const script = [
    `cd ${parent}`,
    // The init's descriptors (directory and lock, secret files) are close-on-exec: none here.
    "if ls -l /proc/$$/fd | grep -E 'out-a|server\\.key|ca\\.pem'; then exit 9; fi",
    'mv out-a out-a.moved',
    `ln -s ${target.dir} out-a`,
    // The real files, in the generation behind ..data (OUT/NAME are symlinks to ..data/NAME).
    'ln out-a.moved/..data/server.key stolen-link', // the child owns the file: protected_hardlinks allows it
    'mv out-a.moved/..data/ca.pem stolen-moved',
    'cat stolen-link stolen-moved', // the child had the secrets (that is the point); now they must go
  ].join('\n');
  const { code, result, log } = await runInit(['--config', config(out, script)]);
  assert.equal(code, 0, log.text);
  assert.equal(result.stdout, 'KEY-SECRET-BYTESCA-SECRET-BYTES');
  target.intact();
  assert.equal(readFileSync(join(parent, 'stolen-link')).length, 0, 'the hard-linked secret is zeroed and truncated');
  assert.equal(readFileSync(join(parent, 'stolen-moved')).length, 0, 'the moved secret is zeroed and truncated');
  assert.deepEqual(readdirSync(join(parent, 'out-a.moved')), [], 'the moved directory is emptied');
  assert.ok(log.find('was moved away while in use'), 'the init says the directory was moved');
});

test('a racer swapping a subdirectory and a symlink (RENAME_EXCHANGE) during the wipe never makes it leave the directory', async (t) => {
  if (!isRoot) return t.skip('needs root');
  if (!needs(t, '/usr/bin/python3', 'apt-get install python3')) return;
  if (!needs(t, 'setpriv', 'apt-get install util-linux')) return;
  const out = join(parent, 'out-b');
  const names = Array.from({ length: 400 }, (_, i) => `f${String(i).padStart(3, '0')}`);
  // Same names on both sides: a wipe that resolves out-b/sub/NAME again would hit the victim.
  const target = victim('victim-b', names);
  const script = [
    `cd ${out}`,
    'mkdir sub',
    `for f in ${names.join(' ')}; do echo child > sub/$f; done`,
    `ln -s ${target.dir} swap`,
    'echo ready',
    'read go', // the test starts the racer, then lets the child exit: the wipe runs under the race
  ].join('\n');
  const init = startInit(['--config', config(out, script)], { stdin: 'pipe' });
  let racer;
  let racerOut: Lines;
  try {
    assert.equal(await new Lines(init.proc.stdout!).next(), 'ready');
    // The script where nobody can read it (a clone under root's 0700 home is not).
    const fixture = copiesForOtherUsers({ 'racer.py': join(root, 'test/fixtures/rename-exchange-racer.py') });
    t.after(() => fixture.remove());
    racer = execa('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '/usr/bin/python3', fixture.path('racer.py'), out, target.dir, '5'], { reject: false });
    racerOut = new Lines(racer.stdout!);
    assert.equal(await racerOut.next(), 'ready');
  } finally {
    init.proc.stdin!.end('go\n');
  }
  const result = await init.proc;
  assert.equal(result.exitCode, 0, init.log.text);
  const exchanges = Number(await racerOut.next());
  await racer;
  assert.ok(exchanges > 10, `the racer raced (${exchanges} exchanges)`);
  target.intact();
  // A racer that keeps swapping may outlast the wipe's passes (a documented limit): then the
  // init names what it left, and what is left is only the racer's own entries, never a secret.
  if (existsSync(out)) {
    assert.ok(init.log.find('could not be removed'), init.log.text);
    assert.deepEqual(readdirSync(out).filter((n) => n === 'server.key' || n === 'ca.pem'), []);
  }
});

test('a second init on the same output.dir exits 78 in one line and leaves the first one\'s secrets alone', async (t) => {
  if (!isRoot) return t.skip('needs root');
  const out = join(parent, 'out-c');
  const first = startInit(['--config', config(out, 'echo ready; read go; cat server.key', { run: { command: ['sh', '-ec', `cd ${out}; echo ready; read go; cat server.key`], user: String(NOBODY) } })], { stdin: 'pipe' });
  try {
    const firstOut = new Lines(first.proc.stdout!);
    assert.equal(await firstOut.next(), 'ready');
    const marker = join(parent, 'second-child-ran');
    const second = await runInit(['--config', config(out, `touch ${marker}`)]);
    assert.equal(second.code, 78, second.log.text);
    const errors = second.log.records.filter((r) => r.severity === 'ERROR');
    assert.deepEqual(errors.map((r) => r.message.replace(/^config \S+: /, '')), [`output.dir ${out} is in use by another tee-init (it holds the directory's lock): give each init its own output.dir`]);
    assert.equal(existsSync(marker), false, 'no child started');
    assert.deepEqual(readdirSync(out).filter((n) => !n.startsWith('..')).sort(), ['ca.pem', 'server.key'], 'the first init\'s files are still there');
    assert.equal(readFileSync(join(out, 'server.key'), 'utf8'), 'KEY-SECRET-BYTES');
  } finally {
    first.proc.stdin!.end('go\n');
  }
  const result = await first.proc;
  assert.equal(result.exitCode, 0, first.log.text);
  assert.equal(result.stdout, 'ready\nKEY-SECRET-BYTES');
  assert.equal(existsSync(out), false);
});

/** A 4 MiB tmpfs mounted for this test only (mode as given), unmounted after it. */
function tmpfs(t: TestContext, mode: string): string {
  const mnt = mkdtempSync('/tmp/tee-init-hostile-mnt-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=4m,mode=${mode}`, 'tmpfs', mnt]);
  t.after(() => {
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

test('a child that makes its key file and a file of its own 100 GB (sparse): the wipe writes what the init wrote, never fills the tmpfs', async (t) => {
  if (!isRoot) return t.skip('needs root');
  // Small: the wipe of the old code wrote zeros up to the apparent size (until ENOSPC).
  const mnt = tmpfs(t, '1777');
  const out = join(mnt, 'out');
  const script = `cd ${out}; chmod u+w ..data/server.key; truncate -s 100G server.key; truncate -s 100G own.bin; echo done`;
  const { code, result, log } = await runInit(['--config', config(out, script)]);
  assert.equal(code, 0, log.text);
  assert.equal(result.stdout, 'done');
  assert.deepEqual(log.records.filter((r) => r.severity === 'ERROR' || r.severity === 'WARNING').map((r) => r.message), [], 'no write failed for lack of room');
  assert.equal(existsSync(out), false, 'the directory is wiped and removed');
  assert.equal(statfsSync(mnt).bfree, statfsSync(mnt).blocks, 'nothing is left on the tmpfs');
});

test('a restarted container: a second boot on the tmpfs mounted as output.dir is accepted; one another uid prepared is refused', async (t) => {
  if (!isRoot) return t.skip('needs root');
  const out = tmpfs(t, '0700'); // the mount point itself, as `--tmpfs DIR` or an emptyDir gives it
  for (const boot of [1, 2]) {
    const { code, result, log } = await runInit(['--config', config(out, `cat ${out}/server.key`)]);
    assert.equal(code, 0, `boot ${boot}: ${log.text}`);
    assert.equal(result.stdout, 'KEY-SECRET-BYTES');
    assert.deepEqual(readdirSync(out), [], `boot ${boot}: wiped`);
  }
  chownSync(out, 1234, 1234);
  const { code, log } = await runInit(['--config', config(out, 'true')]);
  assert.equal(code, 78, log.text);
  assert.match(log.find('belongs to uid')!.message, /^config \S+: output\.dir \S+ exists and belongs to uid 1234, not to tee-init \(uid 0\) or to output\.owner \(uid 65534\)/);
});
