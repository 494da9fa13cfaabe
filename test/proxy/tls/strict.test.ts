// type: tls, mode: strict against independent clients: curl and openssl s_client with, without
// and with a wrong client certificate, a plaintext curl, an allow-list, TLS versions.
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { needs } from '../../helpers/tools.ts';
import { until } from '../../helpers/lines.ts';
import { CLIENT_URI, curl, filePki, httpBackend, mtlsConnect, records, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-strict-');

describe('strict mode with curl', () => {
  test('a client certificate from the CA gets through to the backend', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` }, 'debug');
    const r = await curl(l.port, shared.pki, { path: '/hello' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).url, '/hello');
    const s = l.handle.stats();
    assert.equal(s.connections_established_total, 1);
    assert.equal(s.clients_refused_total, 0);
    const open = records(l.log, 'tls connection open')[0]!;
    assert.deepEqual(open.uri, [CLIENT_URI]);
    assert.equal(open.protocol, 'TLSv1.3');
  });

  test('no client certificate: refused, logged with the reason, nothing reaches the backend', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const r = await curl(l.port, shared.pki, { client: null });
    assert.notEqual(r.code, 0);
    assert.equal(backend.seen.length, 0);
    assert.equal(l.handle.stats().clients_refused_total, 1);
    assert.equal(records(l.log, 'tls client refused')[0]!.reason, 'no client certificate');
  });

  test('a client certificate from another CA: refused by identity and reason', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const r = await curl(l.port, shared.pki, { client: shared.pki.stranger });
    assert.notEqual(r.code, 0);
    assert.equal(backend.seen.length, 0);
    const refused = records(l.log, 'tls client refused')[0]!;
    assert.match(String(refused.reason), /^certificate not trusted/);
    assert.deepEqual(refused.uri, [CLIENT_URI]);
    assert.match(String(refused.subject), /CN=tee-init test client/);
  });

  test('plaintext curl against a strict port: a failed handshake, nothing forwarded', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const r = await curl(l.port, shared.pki, { plain: true });
    assert.notEqual(r.code, 0);
    assert.equal(backend.seen.length, 0);
    assert.equal(l.handle.stats().handshake_failures_total, 1);
    assert.equal(records(l.log, 'tls handshake failed').length, 1);
  });

  test('clients: allow-list by URI prefix lets one client in and refuses another of the same CA', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, {
      mode: 'strict', connect: `127.0.0.1:${backend.port}`, clients: [{ uri: { prefix: 'spiffe://tee-init.test/' } }],
    });
    assert.equal((await curl(l.port, shared.pki)).code, 0);
    const r = await curl(l.port, shared.pki, { client: shared.pki.other });
    assert.notEqual(r.code, 0);
    assert.equal(backend.seen.length, 1);
    const refused = records(l.log, 'tls client refused')[0]!;
    assert.equal(refused.reason, 'not in the clients allow-list');
    assert.deepEqual(refused.uri, ['spiffe://elsewhere.test/ns/x/sa/y']);
    assert.deepEqual(refused.dns, ['other.test']);
  });

  test('clients: exact DNS and subject rules', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, {
      mode: 'strict', connect: `127.0.0.1:${backend.port}`, clients: [{ dns: 'other.test' }, { subject: 'CN=nobody' }],
    });
    assert.equal((await curl(l.port, shared.pki, { client: shared.pki.other })).code, 0);
    assert.notEqual((await curl(l.port, shared.pki)).code, 0);
    const bySubject = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, clients: [{ subject: 'CN=tee-init test client' }] });
    assert.equal((await curl(bySubject.port, shared.pki)).code, 0);
    assert.notEqual((await curl(bySubject.port, shared.pki, { client: shared.pki.other })).code, 0);
  });
});

describe('strict mode with openssl s_client', () => {
  async function sClient(port: number, args: string[]): Promise<{ code: number | undefined; out: string }> {
    const r = await execa('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', shared.pki.ca.cert, '-verify_return_error', ...args], {
      input: 'GET /via-openssl HTTP/1.0\r\n\r\n', reject: false, timeout: 20_000,
    });
    return { code: r.exitCode, out: r.stdout + r.stderr };
  }

  test('with the client certificate: verified both ways, the request answered', async (t) => {
    if (!needs(t, 'openssl', 'apt-get install openssl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const r = await sClient(l.port, ['-cert', shared.pki.client.cert, '-key', shared.pki.client.key, '-ign_eof']);
    assert.match(r.out, /Verify return code: 0 \(ok\)/);
    assert.match(r.out, /"url":"\/via-openssl"/);
    assert.equal(backend.seen.length, 1);
  });

  test('without one, and with one from another CA: no request reaches the backend', async (t) => {
    if (!needs(t, 'openssl', 'apt-get install openssl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const none = await sClient(l.port, ['-ign_eof']);
    assert.doesNotMatch(none.out, /"url"/);
    const stranger = await sClient(l.port, ['-cert', shared.pki.stranger.cert, '-key', shared.pki.stranger.key, '-ign_eof']);
    assert.doesNotMatch(stranger.out, /"url"/);
    assert.equal(backend.seen.length, 0);
    assert.equal(l.handle.stats().clients_refused_total, 2);
  });

  test('TLS 1.2 is refused unless tls12: true', async (t) => {
    if (!needs(t, 'openssl', 'apt-get install openssl')) return;
    const backend = await httpBackend(t);
    const only13 = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const args = ['-tls1_2', '-cert', shared.pki.client.cert, '-key', shared.pki.client.key, '-ign_eof'];
    const refused = await sClient(only13.port, args);
    assert.notEqual(refused.code, 0);
    assert.equal(only13.handle.stats().handshake_failures_total, 1);
    const with12 = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca', tls12: true } });
    const ok = await sClient(with12.port, args);
    assert.match(ok.out, /Protocol *: TLSv1\.2/);
    assert.match(ok.out, /"url":"\/via-openssl"/);
  });
});

describe('refusals at volume', () => {
  test('refused clients are logged one by one up to the burst, then only counted', async (t) => {
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    for (let i = 0; i < 25; i++) {
      const s = await mtlsConnect(l.port, shared.pki, shared.pki.stranger);
      s.on('error', () => {});
      if (!s.closed) await once(s, 'close');
    }
    await until(() => l.handle.stats().clients_refused_total === 25, 'all 25 refusals counted');
    assert.equal(records(l.log, 'tls client refused').length, 20, 'the default burst is 20 lines a minute');
  });
});
