// type: tls, mode: client: plaintext in, mutual TLS out, against openssl s_server -Verify (a
// server that requires our certificate) and through a strict listener (two TEEs talking).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Lines } from '../../helpers/lines.ts';
import { closedWithin } from '../psk/peers.ts';
import { filePki, readAll, records, replyAtEof, sServer, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-client-');

function plainClient(port: number) {
  const c = tcpConnect({ host: '127.0.0.1', port });
  c.on('error', () => {});
  const lines = new Lines(c);
  return { c, lines };
}

describe('client mode', () => {
  test('against openssl s_server -Verify: our certificate is accepted, bytes flow both ways', async (t) => {
    const server = await sServer(t, shared.pki);
    if (!server) return;
    const l = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'localhost' } }, 'debug');
    const { c, lines } = plainClient(l.port);
    c.write('hello from plaintext\n');
    await server.out.until(/^hello from plaintext$/);
    server.write('hello back\n');
    assert.equal(await lines.next(), 'hello back');
    c.destroy();
    assert.equal(l.handle.stats().connections_established_total, 1);
    assert.match(server.out.all.join('\n'), /^subject=\s*CN\s*=\s*tee-init test client$/m, 'the server saw our client certificate');
  });

  test('the server certificate must carry serverName: a wrong name closes the local connection, counted', async (t) => {
    const server = await sServer(t, shared.pki);
    if (!server) return;
    const l = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'wrong.example' } });
    const { c } = plainClient(l.port);
    await closedWithin(c);
    assert.equal(l.handle.stats().handshake_failures_total, 1);
    assert.match(String(records(l.log, 'handshake with the remote peer failed')[0]!.reason), /ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  test('servers: rules check the server\'s SAN instead of its name', async (t) => {
    const server = await sServer(t, shared.pki);
    if (!server) return;
    const good = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, servers: [{ uri: 'spiffe://tee-init.test/server' }] });
    const { c, lines } = plainClient(good.port);
    c.write('ping\n');
    await server.out.until(/^ping$/);
    server.write('pong\n');
    assert.equal(await lines.next(), 'pong');
    c.destroy();
    const bad = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, servers: [{ uri: { prefix: 'spiffe://elsewhere.test/' } }] });
    const other = plainClient(bad.port);
    await closedWithin(other.c);
    assert.match(String(records(bad.log, 'handshake with the remote peer failed')[0]!.reason), /ERR_TLS_SERVER_NOT_ALLOWED/);
  });

  test('a server from another CA is refused', async (t) => {
    const server = await sServer(t, shared.pki);
    if (!server) return;
    const l = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } });
    // Trust only the other CA: the real server is then unknown.
    l.secrets.set('ca', readFileSync(join(shared.dir, 'b', 'ca.crt')));
    await l.handle.reload();
    const { c } = plainClient(l.port);
    await closedWithin(c);
    assert.equal(l.handle.stats().handshake_failures_total, 1);
  });

  test('client mode → strict mode → backend: half-close keeps the answer', async (t) => {
    const backend = await replyAtEof(t);
    const strict = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const client = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${strict.port}` });
    const c = tcpConnect({ host: '127.0.0.1', port: client.port, allowHalfOpen: true });
    c.end('twelve bytes');
    assert.equal((await readAll(c)).toString(), 'got 12 bytes\n');
  });
});
