// `http:` in server modes: X-Forwarded-Client-Cert (Envoy's format) and RFC 9440 Client-Cert,
// what a client sends of them removed; keep-alive and streaming bodies through curl.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { freePort } from '../../helpers/net.ts';
import { needs } from '../../helpers/tools.ts';
import { CLIENT_URI, curl, der, filePki, headerValues, httpBackend, records, SERVER_URI, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-http-');

const FORGED = 'By=spiffe://evil;Hash=00;Subject="CN=admin";URI=spiffe://tee-init.test/admin';

describe('X-Forwarded-Proto and X-Forwarded-For, as Envoy sets them', () => {
  test('the scheme is the connection\'s (a forged one is dropped), the peer is appended to the client\'s chain; underscore spellings dropped', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, http: {} });
    const forged = ['-H', 'X-Forwarded-Proto: gopher', '-H', 'X-Forwarded-For: 203.0.113.7', '-H', 'X_Forwarded_For: 198.51.100.1', '-H', 'X_Forwarded_Proto: ftp'];
    assert.equal((await curl(l.port, shared.pki, { args: forged })).code, 0);
    const tls = backend.seen.at(-1)!;
    assert.deepEqual(headerValues(tls.rawHeaders, 'x-forwarded-proto'), ['https']);
    assert.deepEqual(headerValues(tls.rawHeaders, 'x-forwarded-for'), ['203.0.113.7, 127.0.0.1']);
    assert.deepEqual(headerValues(tls.rawHeaders, 'x_forwarded_for'), []);
    assert.deepEqual(headerValues(tls.rawHeaders, 'x_forwarded_proto'), []);
    assert.equal((await curl(l.port, shared.pki, { plain: true })).code, 0);
    const plain = backend.seen.at(-1)!;
    assert.deepEqual(headerValues(plain.rawHeaders, 'x-forwarded-proto'), ['http'], 'a plaintext client on a permissive port');
    assert.deepEqual(headerValues(plain.rawHeaders, 'x-forwarded-for'), ['127.0.0.1']);
  });
});

describe('XFCC', () => {
  test('sanitize-set (the default): a forged header is replaced by the real identity, in Envoy\'s format', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: {} });
    const r = await curl(l.port, shared.pki, { args: ['-H', `X-Forwarded-Client-Cert: ${FORGED}`, '-H', 'Client-Cert: :AAAA:'] });
    assert.equal(r.code, 0, r.stderr);
    const seen = backend.seen[0]!;
    const hash = createHash('sha256').update(der(shared.pki.client.cert)).digest('hex');
    assert.deepEqual(headerValues(seen.rawHeaders, 'x-forwarded-client-cert'), [
      `By=${SERVER_URI};Hash=${hash};Subject="CN=tee-init test client";URI=${CLIENT_URI}`,
    ]);
    assert.deepEqual(headerValues(seen.rawHeaders, 'client-cert'), [], 'a client-sent Client-Cert is always removed');
  });

  test('several DNS SANs each get a DNS= pair; clientCert: true adds RFC 9440 Client-Cert', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: { clientCert: true } });
    assert.equal((await curl(l.port, shared.pki, { client: shared.pki.other })).code, 0);
    const seen = backend.seen[0]!;
    assert.match(String(seen.headers['x-forwarded-client-cert']), /;URI=spiffe:\/\/elsewhere\.test\/ns\/x\/sa\/y;DNS=other\.test$/);
    assert.equal(seen.headers['client-cert'], `:${der(shared.pki.other.cert).toString('base64')}:`);
  });

  test('forward passes a TLS client\'s own header; off removes it and sets none', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const fwd = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: { xfcc: 'forward' } });
    assert.equal((await curl(fwd.port, shared.pki, { args: ['-H', `X-Forwarded-Client-Cert: ${FORGED}`] })).code, 0);
    assert.equal(backend.seen[0]!.headers['x-forwarded-client-cert'], FORGED);
    const off = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: { xfcc: 'off' } });
    assert.equal((await curl(off.port, shared.pki, { args: ['-H', `X-Forwarded-Client-Cert: ${FORGED}`] })).code, 0);
    assert.equal(backend.seen[1]!.headers['x-forwarded-client-cert'], undefined);
  });

  test('permissive: a plaintext client gets no client-cert headers, and what it forged is removed', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    for (const xfcc of ['sanitize-set', 'forward'] as const) {
      const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, http: { xfcc, clientCert: true } });
      const r = await curl(l.port, shared.pki, { plain: true, args: ['-H', `X-Forwarded-Client-Cert: ${FORGED}`, '-H', 'Client-Cert: :AAAA:', '-H', 'Client-Cert-Chain: :AAAA:'] });
      assert.equal(r.code, 0, r.stderr);
      const seen = backend.seen.at(-1)!;
      for (const h of ['x-forwarded-client-cert', 'client-cert', 'client-cert-chain']) assert.equal(seen.headers[h], undefined, `${xfcc}: ${h}`);
      // The same port over mutual TLS does get them.
      assert.equal((await curl(l.port, shared.pki)).code, 0);
      const tls = backend.seen.at(-1)!.headers;
      if (xfcc === 'sanitize-set') assert.match(String(tls['x-forwarded-client-cert']), /URI=spiffe:\/\/tee-init\.test\/client/);
      assert.equal(tls['client-cert'], `:${der(shared.pki.client.cert).toString('base64')}:`);
    }
  });
});

describe('HTTP/1.1 through the proxy', () => {
  test('keep-alive: two requests on one connection, each with its own XFCC', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: {} });
    const r = await curl(l.port, shared.pki, { path: '/one', args: ['-v', `https://127.0.0.1:${l.port}/two`] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Re-using existing connection|Reusing existing/i);
    assert.deepEqual(backend.seen.map((s) => s.url), ['/two', '/one']); // curl's order: the extra URL came first
    assert.ok(backend.seen.every((s) => String(s.headers['x-forwarded-client-cert']).includes(CLIENT_URI)));
    assert.equal(l.handle.stats().connections_total, 1);
  });

  test('a 64 MiB chunked upload streams through and the response comes back', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const file = join(shared.dir, 'upload.bin');
    const out = createWriteStream(file);
    const block = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 64; i++) out.write(block);
    out.end();
    await finished(out);
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, http: {} });
    for (const plain of [false, true]) {
      const r = await curl(l.port, shared.pki, { plain, args: ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`] });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(r.stdout.startsWith('{'), `plain=${plain}: ${r.stdout} ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).bytes, 64 << 20);
    }
    assert.equal(backend.seen.every((s) => s.headers['transfer-encoding'] === 'chunked'), true);
    assert.ok(readFileSync(file).length === 64 << 20);
  });

  test('backend down: 502 to the client, counted and logged', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const nobody = await freePort();
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${nobody}`, http: {} });
    const r = await curl(l.port, shared.pki, { args: ['-o', '/dev/null', '-w', '%{http_code}'] });
    assert.equal(r.stdout, '502');
    assert.equal(l.handle.stats().upstream_failures_total, 1);
    assert.equal(records(l.log, 'upstream unreachable; answering 502').length, 1);
  });
});
