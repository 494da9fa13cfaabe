// The none preset end to end: a generic Node mTLS server configured only through rendered argv,
// env and a JSON config file, run by the real bundle as a plain init.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { render } from '../../src/render/index.ts';
import { Lines } from '../helpers/lines.ts';
import { createPki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';
import { freePort, tlsRead } from './net.ts';

test('none preset: a generic backend gets its argv, env and config file rendered (real bundle)', async (t) => {
  if (!needs(t, 'openssl', 'apt-get install openssl')) return;
  const { node, root, startInit } = await import('../helpers/init.ts');

  const dir = mkdtempSync(join(tmpdir(), 'tee-init-backend-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = createPki(join(dir, 'pki'));
  const outputDir = join(dir, 'out');
  mkdirSync(outputDir, { mode: 0o700 });
  const port = await freePort();

  const rendered = render({
    run: {
      command: [node, join(root, 'test', 'fixtures', 'mtls-greeter.mjs'), '--port', '{{with.port}}', '--cert', '{{secrets.cert.path}}', '--key', '{{secrets.key.path}}', '--config', '{{output.dir}}/greeter.json'],
      env: { BACKEND_CA: '{{secrets.ca.path}}', BACKEND_NAME: 'tee-init {{with.name}}' },
      files: [{ name: 'greeter.json', template: { port: '{{with.port}}', greeting: '{{with.greeting}}' } }],
      // A value that looks like a placeholder and JSON punctuation stays a value.
      with: { port, name: 'none preset', greeting: 'hello "{{secrets.key.path}}",' },
    },
    secrets: { ca: { path: pki.ca.cert }, cert: { path: pki.server.cert }, key: { path: pki.server.key }, psk: {} },
    outputDir,
  });
  // What materialize will do: write each rendered file into the output directory.
  for (const f of rendered.files) {
    writeFileSync(join(outputDir, f.name), f.content, { flag: 'wx', mode: f.mode });
    chmodSync(join(outputDir, f.name), f.mode);
  }
  assert.equal(statSync(join(outputDir, 'greeter.json')).mode & 0o777, 0o400);

  const { proc, log } = startInit(['--', ...rendered.argv], { stdout: 'pipe', env: rendered.env });
  t.after(() => proc.kill('SIGKILL'));
  const out = new Lines(proc.stdout!);
  assert.deepEqual((await out.until(/^listening (\d+)$/)).slice(1), [String(port)]);

  const good = await tlsRead({ port, ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });
  assert.equal(good.data, 'hello "{{secrets.key.path}}", tee-init test client via tee-init none preset\n', good.error);

  const anonymous = await tlsRead({ port, ca: pki.ca.cert });
  assert.equal(anonymous.data, '', 'no greeting without a client certificate');
  await out.until(/^refused: /);

  proc.kill('SIGTERM');
  const result = await proc;
  assert.equal(result.exitCode, 0, log.text);
  assert.equal((await log.waitFor('child exited')).code, 0);
});
