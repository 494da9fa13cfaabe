// `npm run demo` (the README's first command) works: with redis-server, and with the generic
// backend it falls back to when redis-server is absent.
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { join } from 'node:path';
import { test } from 'node:test';
import { node, root } from '../helpers/init.ts';
import { needs } from '../helpers/tools.ts';

for (const backend of ['redis', 'generic'] as const) {
  test(`the demo runs end to end (${backend} backend)`, async (t) => {
    if (backend === 'redis' && !needs(t, 'redis-server', 'apt-get install redis-server')) return;
    const r = await execa(node, [join(root, 'scripts', 'demo.ts')], { reject: false, env: backend === 'generic' ? { DEMO_BACKEND: 'generic' } : {}, timeout: 60_000 });
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^OK: attested, fetched from two collaborators, served mutual TLS from tmpfs, stopped cleanly\.$/m);
    assert.match(r.stdout, /nothing left behind/);
    assert.match(r.stdout, backend === 'redis' ? /ping +-> PONG/ : /mTLS client +-> hello tee-init test client via tee-init/);
  });
}

test('examples/psk/run-local.ts runs the two-collaborator PSK setup', async (t) => {
  if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'redis-cli', 'apt-get install redis-tools')) return;
  const r = await execa(node, [join(root, 'examples', 'psk', 'run-local.ts')], { reject: false, timeout: 60_000 });
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /SET\/GET -> OK \/ hello through two TEEs/);
  assert.match(r.stdout, /^OK: both inits derived the same key/m);
});
