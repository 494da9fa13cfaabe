// The shipped artefact: dist/ alone, on Node 24 with and without the shebang's flag; an older
// Node (22) refused in one line, whether started directly or through the shebang.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Lines } from '../helpers/lines.ts';
import { bundle, node, root, startCommand } from '../helpers/init.ts';
import { orphansScript } from '../helpers/orphans.ts';
import { isRoot } from '../helpers/tools.ts';

const node22 = join(root, '.cache', 'node22', 'node_modules', 'node', 'bin', 'node');

describe('dist/ copied away from node_modules', () => {
  let dir: string;
  let copy: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tee-init-dist-'));
    cpSync(dirname(bundle), dir, { recursive: true });
    copy = join(dir, 'tee-init.js');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('starts with its shebang (node --disable-sigusr1) and supervises', async () => {
    const { proc } = startCommand([copy, '--', 'sh', '-c', 'exit 5'], { env: { PATH: `${dirname(node)}:${process.env.PATH}` } });
    assert.equal((await proc).exitCode, 5);
    assert.match(readFileSync(copy, 'utf8').split('\n')[1]!, /exec node --disable-sigusr1 --max-semi-space-size=1 --max-old-space-size=256 "\$0" "\$@"/);
  });

  test('the images start node with the start line\'s flags (the heap bounds ship in both)', () => {
    const flags = /exec node (.*?) "\$0"/.exec(readFileSync(copy, 'utf8').split('\n')[1]!)![1]!.split(' ');
    for (const file of ['Dockerfile.distroless', 'Dockerfile.postgres']) {
      const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(root, file), 'utf8'))![1]!) as string[];
      assert.deepEqual(entry.slice(1, -1), flags, file);
    }
  });

  test('reaps as PID 1 with the native module shipped in dist/native', async (t) => {
    if (!isRoot) return t.skip('needs root for unshare');
    const { proc, log } = startCommand(['unshare', '--pid', '--fork', '--mount-proc', node, '--disable-sigusr1', copy, '--', 'sh', '-c', orphansScript(10)]);
    const result = await proc;
    assert.equal(result.exitCode, 7, log.text);
    assert.equal(result.stdout, 'zombies=0 sleeps=0');
    assert.equal(log.find('cannot reap'), undefined, log.text);
  });

  for (const via of ['node dist/tee-init.js', 'the shebang']) {
    test(`refuses Node 22 in one line, started as ${via}; nothing runs`, async () => {
      if (!existsSync(node22)) throw new Error(`${node22} is missing: scripts/test-setup.mjs installs it`);
      const marker = join(dir, `ran-${via.length}`);
      const command = ['--', 'sh', '-c', `touch ${marker}`];
      const argv = via === 'the shebang' ? [copy, ...command] : [node22, copy, ...command];
      const { proc } = startCommand(argv, { env: { PATH: `${dirname(node22)}:${process.env.PATH}` } });
      const result = await proc;
      assert.equal(result.exitCode, 78);
      const lines = (result.stderr as string).trim().split('\n');
      assert.equal(lines.length, 1, result.stderr as string);
      assert.match(lines[0]!, new RegExp(`^tee-init: needs Node\\.js 24 or later, found Node\\.js v22\\.\\d+\\.\\d+ at ${node22.replace(/\./g, '\\.')}: install Node\\.js 24 LTS, .*node_modules/\\.bin/node dist/tee-init\\.js$`));
      assert.equal(existsSync(marker), false, 'the command never ran');
    });
  }
});

describe('SIGUSR1 never opens a debugger, and is forwarded', () => {
  for (const flag of [true, false]) {
    test(flag ? 'with --disable-sigusr1' : 'without --disable-sigusr1 (warned about)', async () => {
      const catcher = join(root, 'test', 'fixtures', 'signal-catcher.mjs');
      const { proc, log } = startCommand([node, ...(flag ? ['--disable-sigusr1'] : []), bundle, '--', node, catcher, 'SIGUSR1'], { stdout: 'pipe' });
      const out = new Lines(proc.stdout!);
      const childPid = Number((await out.until(/^ready (\d+)/))[1]);
      for (let i = 0; i < 3; i++) {
        proc.kill('SIGUSR1');
        assert.equal(await out.next(), 'got SIGUSR1');
      }
      process.kill(childPid, 'SIGTERM');
      const result = await proc;
      assert.equal(result.exitCode, 143);
      assert.doesNotMatch(log.text, /Debugger listening/);
      assert.equal(Boolean(log.find('without --disable-sigusr1')), !flag);
    });
  }
});
