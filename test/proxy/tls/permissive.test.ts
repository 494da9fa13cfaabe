// type: tls, mode: permissive: mutual TLS and plaintext on one port, decided by the first bytes;
// slow and silent clients are dropped at the handshake deadline.
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { describe, test } from 'node:test';
import { until } from '../../helpers/lines.ts';
import { needs } from '../../helpers/tools.ts';
import { closedWithin } from '../psk/peers.ts';
import { curl, filePki, httpBackend, mtlsConnect, readAll, records, replyAtEof, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-permissive-');

describe('permissive mode', () => {
  test('plaintext curl and mutual-TLS curl on the same port; plaintext counted and logged', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}` });
    const plain = await curl(l.port, shared.pki, { plain: true, path: '/plain' });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(JSON.parse(plain.stdout).url, '/plain');
    const tls = await curl(l.port, shared.pki, { path: '/tls' });
    assert.equal(tls.code, 0, tls.stderr);
    assert.equal(JSON.parse(tls.stdout).url, '/tls');
    const s = l.handle.stats();
    assert.equal(s.plaintext_connections_total, 1);
    assert.equal(s.connections_established_total, 2);
    const logged = records(l.log, 'plaintext client on a permissive port');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.plaintext, true);
  });

  test('TLS without a certificate, or from another CA, is still refused: permissive is not "anything goes"', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}` });
    assert.notEqual((await curl(l.port, shared.pki, { client: null })).code, 0);
    assert.notEqual((await curl(l.port, shared.pki, { client: shared.pki.stranger })).code, 0);
    assert.equal(backend.seen.length, 0);
    assert.equal(l.handle.stats().clients_refused_total, 2);
  });

  test('slowloris: a client trickling a TLS record header is dropped at the handshake deadline', async (t) => {
    const backend = await replyAtEof(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, handshakeTimeout: '300ms' });
    const c = tcpConnect({ host: '127.0.0.1', port: l.port });
    c.on('error', () => {});
    c.write(Buffer.from([0x16]));
    // One more byte of the header later: still undecided, still not a handshake. Then nothing.
    setTimeout(() => c.write(Buffer.from([0x03])), 100).unref();
    await closedWithin(c);
    await until(() => l.handle.stats().connections_active === 0, 'the slot to be free');
    assert.equal(l.handle.stats().handshake_failures_total, 1);
    assert.equal(records(l.log, 'tls handshake failed')[0]!.reason, 'ERR_TLS_HANDSHAKE_TIMEOUT');
  });

  test('slowloris past the sniff: a TLS ClientHello that never completes is dropped at the same deadline', async (t) => {
    const backend = await replyAtEof(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, handshakeTimeout: '300ms' });
    const c = tcpConnect({ host: '127.0.0.1', port: l.port });
    c.on('error', () => {});
    c.write(Buffer.from([0x16, 0x03, 0x01, 0x01, 0x00, 0x01])); // a record header and the start of a ClientHello
    await closedWithin(c);
    await until(() => l.handle.stats().connections_active === 0, 'the slot to be free');
    assert.equal(l.handle.stats().handshake_failures_total, 1);
  });

  test('a silent client is dropped too, and a plaintext client that speaks is not', async (t) => {
    const backend = await replyAtEof(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, handshakeTimeout: '300ms' });
    const silent = tcpConnect({ host: '127.0.0.1', port: l.port });
    silent.on('error', () => {});
    await closedWithin(silent);
    // Plaintext, half-closed: the backend answers only after the client's FIN.
    const plain = tcpConnect({ host: '127.0.0.1', port: l.port, allowHalfOpen: true });
    plain.end('hello');
    assert.equal((await readAll(plain)).toString(), 'got 5 bytes\n');
    assert.equal(l.handle.stats().plaintext_connections_total, 1);
  });

  test('mutual TLS half-close through permissive: the answer after the FIN arrives', async (t) => {
    const backend = await replyAtEof(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}` });
    const c = await mtlsConnect(l.port, shared.pki, shared.pki.client, true);
    c.end('hello over tls');
    assert.equal((await readAll(c)).toString(), 'got 14 bytes\n');
  });
});
