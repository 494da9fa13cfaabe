// What a person reads when the program cannot start, and workingDir (compose's working_dir):
// the program runs where it is told; a working directory that does not exist is a config error
// naming it; a program missing from PATH is "not found" (127) naming the PATH searched, also
// when some PATH directory cannot be searched by the program's user (execvp says EACCES then).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { isRoot } from '../helpers/tools.ts';

describe('starting the program', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  test('run.workingDir: the program runs there', async () => {
    const where = join(b.dir, 'work');
    mkdirSync(where);
    const seen = join(b.dir, 'pwd-seen');
    const { proc, log } = b.start(b.config({ run: { command: ['sh', '-c', `pwd > ${seen}`], workingDir: where } }));
    assert.equal((await proc).exitCode, 0, log.text);
    assert.equal(readFileSync(seen, 'utf8').trim(), where);
  });

  test('a working directory that does not exist: one line naming it, exit 78, before anything is fetched', async () => {
    b.world.gcp.requests.length = 0;
    const { proc, log } = b.start(b.config({ run: { command: ['true'], workingDir: '/nonexistent/tee-init-work' } }));
    assert.equal((await proc).exitCode, 78, log.text);
    assert.ok(log.find('run.workingDir: /nonexistent/tee-init-work does not exist or is not a directory: create it in the image'), log.text);
    assert.deepEqual(b.world.gcp.requests, [], 'nothing fetched');
  });

  test('not on PATH, with a PATH directory the user cannot search: 127 "not found", naming the PATH', async (t) => {
    if (!isRoot) return t.skip('needs root to run the program as another user');
    const locked = join(b.dir, 'locked-bin');
    mkdirSync(locked, { mode: 0o700 }); // root's: nobody cannot search it
    const PATH = `${locked}:/usr/bin:/bin`;
    const { proc, log } = b.start(b.config({ run: { command: ['no-such-program-tee-init'], user: 'nobody' } }), [], { PATH });
    assert.equal((await proc).exitCode, 127, log.text);
    assert.ok(log.find(`cannot run "no-such-program-tee-init": command not found (searched PATH=${PATH}); some of these directories cannot be searched by the program's user`), log.text);
  });
});
