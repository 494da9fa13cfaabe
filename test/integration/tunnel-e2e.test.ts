// PENDING (issue 13): the whole init with `listeners:` of type tunnel. Not *.test.ts on purpose:
// the lead renames it to test/integration/tunnel-e2e.test.ts once the listener engine (issue 11)
// is merged and the `tunnel` entry is in LISTENER_TYPES.
//
// Two real bundles (dist/tee-init.js), each with its config, as in examples/cloud-run-tunnel:
// the server side supervises the Congrats server and serves `tunnel-in` (h2c, inner mTLS); the
// client side serves `tunnel-out` (POST, inner mTLS) and runs the Congrats client, whose exit
// status becomes the init's. Ports are ephemeral; every output line is scanned for key bytes.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { bundle, node, root, startInit } from '../helpers/init.ts';
import { freePort } from '../helpers/net.ts';
import { createPki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';
import { tempDir } from '../proxy/psk/peers.ts';

const example = join(root, 'examples', 'cloud-run-tunnel');

test('whole init: the Congrats demo with tee-init at both ends, no Envoy', async (t) => {
  if (!needs(t, 'openssl', 'apt-get install openssl')) return;
  const dir = tempDir(t, 'tee-init-tunnel-e2e-');
  const pki = createPki(join(dir, 'pki'));
  const [programPort, tunnelPort, localPort] = [await freePort(), await freePort(), await freePort()];
  const file = (path: string) => ({ source: 'file', path });

  const serverConfig = {
    log: { level: 'trace' },
    secrets: { ca: file(pki.ca.cert), cert: file(pki.server.cert), key: file(pki.server.key) },
    run: { command: [node, join(example, 'congrats-server.mjs'), `127.0.0.1:${programPort}`] },
    listeners: {
      'tunnel-in': { type: 'tunnel', mode: 'server', listen: `127.0.0.1:${tunnelPort}`, connect: `127.0.0.1:${programPort}`, h2c: true, inner: { tls: { cert: 'cert', key: 'key', ca: 'ca' } } },
    },
  };
  const clientConfig = {
    log: { level: 'trace' },
    secrets: { ca: file(pki.ca.cert), cert: file(pki.client.cert), key: file(pki.client.key) },
    run: { command: [node, join(example, 'congrats-client.mjs'), `127.0.0.1:${localPort}`] },
    listeners: {
      'tunnel-out': { type: 'tunnel', mode: 'client', listen: `127.0.0.1:${localPort}`, url: `http://127.0.0.1:${tunnelPort}/`, inner: { tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'localhost' } } },
    },
  };
  writeFileSync(join(dir, 'server.json'), JSON.stringify(serverConfig));
  writeFileSync(join(dir, 'client.json'), JSON.stringify(clientConfig));

  const { proc: server, log: serverLog } = startInit(['--config', join(dir, 'server.json')]);
  t.after(async () => {
    server.kill('SIGTERM');
    await server;
  });
  // The client program dials at once: the server side (front door) must be up first, as on Cloud Run.
  await serverLog.waitFor('tunnel listening', 30_000);
  const client = await execa(node, [bundle, '--config', join(dir, 'client.json')], { reject: false, all: true, timeout: 60_000 });
  assert.equal(client.exitCode, 0, client.all);
  assert.match(client.stdout, /^Congrats! You have connected through the tunnel\.\nhello from the congrats client/);

  server.kill('SIGTERM');
  const s = await server;
  assert.equal(s.exitCode, 0, serverLog.text); // the Congrats server exits 0 on SIGTERM, the init with it
  // No key byte in anything either init or its program printed, at trace level.
  const text = `${client.all}\n${String(s.stdout)}\n${serverLog.text}`;
  for (const key of [pki.server.key, pki.client.key, pki.ca.key]) {
    for (const line of readFileSync(key, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'))) assert.ok(!text.includes(line), `${key} leaked`);
  }
});
