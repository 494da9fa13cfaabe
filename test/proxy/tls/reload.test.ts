// reload(): new TLS material for new connections, open connections untouched; unusable
// material is refused and the old one kept. (Rotation will call it; here it is called directly.)
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InitError } from '../../../src/lib/errors.ts';
import { issue } from '../../helpers/pki.ts';
import { echoServer, filePki, mtlsConnect, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-reload-');

test('a reload swaps the server certificate for new connections; an open one keeps working', async (t) => {
  const backend = await echoServer(t);
  const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
  const before = await mtlsConnect(l.port, shared.pki);
  const oldFingerprint = before.getPeerX509Certificate()!.fingerprint256;

  const next = issue(shared.pki.dir, shared.pki.ca, 'server-2', 'tee-init test server 2', [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1',
  ]);
  l.secrets.set('cert', readFileSync(next.cert));
  l.secrets.set('key', readFileSync(next.key));
  await l.handle.reload();

  const after = await mtlsConnect(l.port, shared.pki);
  // Read once: Node hands out the peer's X509Certificate a single time per socket.
  const newFingerprint = after.getPeerX509Certificate()!.fingerprint256;
  assert.equal(newFingerprint, new X509Certificate(readFileSync(next.cert)).fingerprint256);
  assert.notEqual(newFingerprint, oldFingerprint);
  before.write('still here');
  assert.equal(await new Promise((r) => before.once('data', (d: Buffer) => r(d.toString()))), 'still here');
  before.destroy();
  after.destroy();
});

test('a key that does not match the certificate: reload rejects (65) and the old material stays', async (t) => {
  const backend = await echoServer(t);
  const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
  const oldFingerprint = (await mtlsConnect(l.port, shared.pki)).getPeerX509Certificate()!.fingerprint256;
  l.secrets.set('key', readFileSync(shared.pki.client.key));
  await assert.rejects(l.handle.reload(), (err: unknown) => {
    assert.ok(err instanceof InitError);
    assert.equal(err.exitCode, 65);
    assert.match(err.message, /listeners\.test\.tls\.key: secret key does not match the certificate in secret cert/);
    return true;
  });
  const s = await mtlsConnect(l.port, shared.pki);
  assert.equal(s.getPeerX509Certificate()!.fingerprint256, oldFingerprint);
  s.destroy();
});

test('a new CA in a reload: clients of the old CA are refused from then on', async (t) => {
  const backend = await echoServer(t);
  const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
  l.secrets.set('ca', readFileSync(join(shared.dir, 'b', 'ca.crt')));
  await l.handle.reload();
  const s = await mtlsConnect(l.port, shared.pki);
  await new Promise((r) => s.once('close', r));
  assert.equal(l.handle.stats().clients_refused_total, 1);
});
