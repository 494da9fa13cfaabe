// examples/cloud-run-tunnel: its listeners parse with the tunnel type's schema and name
// configured secrets and credentials; and the local flow runs end to end with the example's
// own listener configs and its real Congrats programs (ports made ephemeral). The whole-init
// run of run-local.sh is test/pending/tunnel-e2e.ts, enabled once the listener engine is in.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { parse } from 'yaml';
import { tunnelType } from '../../src/proxy/types/tunnel/type.ts';
import { Lines } from '../helpers/lines.ts';
import { freePort } from '../helpers/net.ts';
import { createPki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';
import { secretsOf, startTunnel, tempDir } from './peers.ts';

const dir = join(import.meta.dirname, '..', '..', 'examples', 'cloud-run-tunnel');
type Obj = Record<string, any>;
const load = (file: string): Obj => parse(readFileSync(join(dir, file), 'utf8'));

for (const file of ['tee-init.yaml', 'client.yaml', 'local/server.yaml', 'local/client.yaml']) {
  test(`example cloud-run-tunnel/${file}: its listeners are valid tunnel configs using configured secrets`, () => {
    const c = load(file);
    for (const [name, l] of Object.entries<Obj>(c.listeners)) {
      const parsed = tunnelType.schema.parse(l);
      for (const s of tunnelType.secrets(parsed)) assert.ok(Object.hasOwn(c.secrets, s), `listeners.${name}: secret ${s} is configured`);
      for (const cr of tunnelType.credentials(parsed)) assert.ok(Object.hasOwn(c.credentials ?? {}, cr), `listeners.${name}: credentials ${cr} are configured`);
    }
    // Only the listener uses the TLS material: nothing is written for the program.
    for (const [name, s] of Object.entries<Obj>(c.secrets)) assert.equal(s.file, undefined, `secrets.${name} stays in memory`);
  });
}

test('example cloud-run-tunnel: the Congrats client reaches the Congrats server through both tunnel ends', async (t) => {
  if (!needs(t, 'openssl', 'apt-get install openssl')) return;
  const pki = createPki(tempDir(t, 'tee-init-example-'));
  const secrets = secretsOf({ ca: pki.ca.cert, cert: pki.server.cert, key: pki.server.key });
  const clientSecrets = secretsOf({ ca: pki.ca.cert, cert: pki.client.cert, key: pki.client.key });
  const server = load('local/server.yaml');
  const client = load('local/client.yaml');
  const node = 'node';

  // The program of the server side, as its run.command says (on a free port instead).
  const programPort = await freePort();
  const [cmd, script] = server.run.command as string[];
  const program = execa(cmd === 'node' ? node : cmd!, [script!, `127.0.0.1:${programPort}`], { cwd: dir, reject: false, stdout: 'pipe' });
  t.after(async () => {
    program.kill('SIGKILL');
    await program;
  });
  await new Lines(program.stdout).until(/listening/);

  const inCfg = { ...server.listeners['tunnel-in'], listen: '127.0.0.1:0', connect: `127.0.0.1:${programPort}` };
  const tunnelIn = await startTunnel(t, 'tunnel-in', inCfg, secrets);
  const outCfg = { ...client.listeners['tunnel-out'], listen: '127.0.0.1:0', url: `http://127.0.0.1:${tunnelIn.port}/` };
  const tunnelOut = await startTunnel(t, 'tunnel-out', outCfg, clientSecrets);

  const [ccmd, cscript] = client.run.command as string[];
  const r = await execa(ccmd === 'node' ? node : ccmd!, [cscript!, `127.0.0.1:${tunnelOut.port}`], { cwd: dir, reject: false, timeout: 30_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(r.stdout, 'Congrats! You have connected through the tunnel.\nhello from the congrats client');
  assert.equal(tunnelIn.handle.stats().handshake_failures_total, 0);
  assert.equal(tunnelIn.handle.stats().established_total, 1);
});
