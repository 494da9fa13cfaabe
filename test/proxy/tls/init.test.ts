// The whole init (the bundle in dist/, as PID 1 would run it) with a tls listener in http: mode
// served from its own thread (workers: 0), in front of a hostile program: a client certificate
// with unusual names, responses that are not valid HTTP and a client trickling its headers end
// one connection each. The init, its program and a bystander's keep-alive connection go on,
// and a stop still exits 0.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { boot, type Boot } from '../../helpers/boot.ts';
import { freePort } from '../../helpers/net.ts';
import { createPki, type Pki } from '../../helpers/pki.ts';
import { needs } from '../../helpers/tools.ts';
import { bystander, curl, HOSTILE_PROGRAM, readAll, unusualClient } from './peers.ts';

let b: Boot;
let pki: Pki;
let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tee-init-tls-init-'));
  pki = createPki(dir, { serverSans: ['DNS:localhost', 'IP:127.0.0.1'] });
  b = await boot({ pem: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) } });
});
after(async () => {
  await b.close();
  rmSync(dir, { recursive: true, force: true });
});

test('workers: 0: faults from a client certificate, the program and a slow client end one connection each, never the init', async (t) => {
  if (!needs(t, 'curl', 'apt-get install curl')) return;
  const [listen, slowListen, programPort] = [await freePort(), await freePort(), await freePort()];
  const common = { type: 'tls', mode: 'permissive', connect: `127.0.0.1:${programPort}`, tls: { cert: 'cert', key: 'key', ca: 'ca' }, workers: 0 };
  const { proc, log } = b.start(b.config({
    run: { command: [process.execPath, HOSTILE_PROGRAM, String(programPort)] },
    listeners: {
      // The bystander's listener keeps the default header deadline (an idle keep-alive connection lives 30 s).
      web: { ...common, listen: `127.0.0.1:${listen}`, http: {} },
      slow: { ...common, listen: `127.0.0.1:${slowListen}`, http: { headersTimeout: '1s' } },
    },
  }));
  let exited = false;
  void proc.then(() => (exited = true));
  await log.waitFor((r) => r.message === 'tls proxy listening' && r.listener === 'slow', 20_000);
  await log.waitFor((r) => r.message === 'tls proxy listening' && r.listener === 'web', 20_000);
  const keepAlive = bystander(t, listen, pki);
  assert.deepEqual(await keepAlive(), { status: 200, reused: false });

  const unusual = await curl(listen, pki, { client: unusualClient(pki, dir), args: ['-o', '/dev/null', '-w', '%{http_code}'] });
  assert.equal(unusual.stdout, '200', `${unusual.stderr}\n${log.text}`);
  for (const path of ['/ctl-reason', '/status-099', '/switching']) {
    const r = await curl(listen, pki, { path, args: ['-o', '/dev/null', '-w', '%{http_code}'] });
    assert.equal(r.stdout, '502', `${path}: ${r.stderr}`);
  }
  const slow = tcpConnect({ host: '127.0.0.1', port: slowListen });
  slow.on('error', () => {});
  slow.write('GET / HTTP/1.1\r\nHost: x\r\n');
  assert.match((await readAll(slow)).toString(), /^HTTP\/1\.1 408 /);

  assert.deepEqual(await keepAlive(), { status: 200, reused: true }, 'the bystander kept its connection');
  assert.equal(exited, false, `the init is still running:\n${log.text}`);
  assert.equal(log.records.filter((r) => r.severity === 'ERROR' || r.severity === 'CRITICAL').length, 0, log.text);

  proc.kill('SIGTERM');
  const result = await proc;
  assert.equal(result.exitCode, 0, log.text);
});
