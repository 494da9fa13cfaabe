// The failure boundary of a tls listener in `http:` mode: values from the client's certificate
// and from the program's response never make node:http throw (PID 1 would fall, or a worker
// thread with every bystander on it); a bad response is a 502; a client that trickles its headers
// meets a deadline. Each case checks that a bystander's keep-alive connection is still served.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import { describe, test } from 'node:test';
import type { ListenerHandle } from '../../../src/proxy/listener.ts';
import { tlsListenerSchema } from '../../../src/config/listeners/tls.ts';
import { tlsType } from '../../../src/proxy/types/tls/type.ts';
import { startInWorkers } from '../../../src/proxy/workers.ts';
import { createLog } from '../../../src/lib/log.ts';
import { until } from '../../helpers/lines.ts';
import { memoryLog, type MemoryLog } from '../../helpers/log.ts';
import { needs } from '../../helpers/tools.ts';
import type { KeyPair } from '../../helpers/pki.ts';
import { closedWithin, pskConnect, serverOptions, startProxy } from '../psk/peers.ts';
import { bystander, clientWith, curl, der, echoServer, filePki, headerValues, hostileProgram, httpBackend, listenLocal, mtlsConnect, readAll, records, SERVER_URI, sServer, startTls, unusualClient } from './peers.ts';

const shared = filePki('tee-init-tls-boundary-');

/** The subject as OpenSSL prints it in RFC 2253 (what Envoy puts in XFCC): an independent reference. */
function rfc2253(cert: string): string {
  return execFileSync('openssl', ['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'latin1' }).trim().replace(/^subject=/, '');
}

describe('client certificate values in XFCC (workers: 0, the init\'s own thread)', () => {
  test('UTF-8, quotes, backslashes, commas, semicolons and control characters are encoded, and decode back', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const unusual = unusualClient(shared.pki, shared.dir);
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: {} });
    const keepAlive = bystander(t, l.port, shared.pki);
    assert.deepEqual(await keepAlive(), { status: 200, reused: false });

    const r = await curl(l.port, shared.pki, { client: unusual, path: '/unusual' });
    assert.equal(r.code, 0, r.stderr);
    const xfcc = headerValues(backend.seen.find((s) => s.url === '/unusual')!.rawHeaders, 'x-forwarded-client-cert');
    const hash = createHash('sha256').update(der(unusual.cert)).digest('hex');
    // The subject exactly as OpenSSL prints RFC 2253 (UTF-8 bytes as \XX), then as a quoted-string.
    const subject = rfc2253(unusual.cert);
    assert.match(subject, /\\D0\\BA/, 'openssl escapes the UTF-8 bytes');
    assert.deepEqual(xfcc, [
      `By=${SERVER_URI};Hash=${hash};Subject="${subject.replace(/(["\\])/g, '\\$1')}";` +
      'URI=spiffe://x/%C5%81%C3%B3d%C5%BA;URI="spiffe://a/b,c";URI=spiffe://ctl/a%01b;URI="spiffe://q/x;y=z";DNS=plain.test',
    ]);
    assert.equal(decodeURIComponent('spiffe://x/%C5%81%C3%B3d%C5%BA'), 'spiffe://x/Łódź');

    assert.deepEqual(await keepAlive(), { status: 200, reused: true }, 'the bystander keeps its connection');
    assert.equal(l.handle.stats().connection_faults_total, 0);
  });

  test('underscore spellings of the proxy\'s headers are dropped, as Envoy does for CGI/WSGI programs', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, http: { clientCert: true } });
    const forged = ['-H', 'X_Forwarded_Client_Cert: By=x;URI=spiffe://tee-init.test/admin', '-H', 'client_cert: :AAAA:', '-H', 'Client_Cert-Chain: :AAAA:', '-H', 'X_Other: kept'];
    for (const plain of [true, false]) {
      const r = await curl(l.port, shared.pki, { plain, args: forged });
      assert.equal(r.code, 0, r.stderr);
      const raw = backend.seen.at(-1)!.rawHeaders;
      const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      assert.ok(!names.some((n) => /^(x_forwarded_client_cert|client_cert|client_cert-chain)$/.test(n)), `plain=${plain}: ${names.join(' ')}`);
      assert.deepEqual(headerValues(raw, 'x_other'), ['kept'], 'other underscore headers pass');
    }
  });
});

describe('the program\'s response (workers: 0)', () => {
  test('an invalid status line or header is a 502 with a reason; the listener and a bystander go on', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await hostileProgram(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: {} });
    const keepAlive = bystander(t, l.port, shared.pki);
    assert.deepEqual(await keepAlive(), { status: 200, reused: false });
    const expected: Record<string, RegExp> = {
      '/ctl-reason': /reason phrase of its 200 has a control character/,
      '/status-099': /status code 99 is not 200-599/,
      '/status-000': /status code 0 is not 200-599/,
      '/status-999': /status code 999 is not 200-599/,
      '/switching': /101 Switching Protocols/,
      '/bad-header': /not valid HTTP \(HPE_INVALID_HEADER_TOKEN\)/, // node:http's parser refuses it first
    };
    for (const [path, why] of Object.entries(expected)) {
      const r = await curl(l.port, shared.pki, { path, args: ['-w', '\n%{http_code}'] });
      assert.equal(r.code, 0, `${path}: ${r.stderr}`);
      const [body, status] = r.stdout.split(/\n(?=\d+$)/);
      assert.equal(status, '502', `${path}: ${r.stdout}`);
      assert.match(body!, why, path);
      assert.deepEqual(await keepAlive(), { status: 200, reused: true }, `${path}: the bystander keeps its connection`);
    }
    assert.equal(l.handle.stats().upstream_failures_total, Object.keys(expected).length);
    assert.equal(l.handle.stats().connection_faults_total, 0);
    const logged = records(l.log, 'upstream sent an invalid response; answering 502');
    assert.ok(logged.some((r) => /status code 99 /.test(String(r.reason))));
  });
});

describe('header deadline', () => {
  test('a plaintext client trickling header lines is closed with 408 at the deadline, counted', async (t) => {
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, http: { headersTimeout: '500ms' } });
    const c = tcpConnect({ host: '127.0.0.1', port: l.port });
    c.on('error', () => {});
    c.write('GET / HTTP/1.1\r\nHost: x\r\n');
    // One more header line now and then, never the end of the headers; bounded so the test stops by itself.
    let lines = 0;
    const trickle = setInterval(() => (lines++ < 200 && !c.destroyed ? c.write(`X-Line-${lines}: 1\r\n`) : clearInterval(trickle)), 100);
    t.after(() => clearInterval(trickle));
    const answer = await readAll(c);
    clearInterval(trickle);
    assert.match(answer.toString(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.equal(backend.seen.length, 0);
    await until(() => l.handle.stats().connections_active === 0, 'the slot to be free');
    assert.equal(l.handle.stats().http_header_timeouts_total, 1);
    assert.equal(records(l.log, 'http request headers incomplete at the header deadline').length, 1);
  });

  test('over mutual TLS too, and an idle keep-alive connection is closed without a word', async (t) => {
    if (!needs(t, 'openssl', 'apt-get install openssl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: { headersTimeout: '500ms' } });
    // A complete request, then silence: the answer, then a close with nothing more.
    const keepAlive = bystander(t, l.port, shared.pki);
    assert.equal((await keepAlive()).status, 200);
    await until(() => l.handle.stats().connections_active === 0, 'the idle keep-alive connection to be closed');
    assert.equal(records(l.log, 'http request headers incomplete').length, 0, 'an idle connection is not a slow client');
    // A request's first line, then silence, over TLS.
    const { connect } = await import('node:tls');
    const s = connect({ host: '127.0.0.1', port: l.port, ca: readFileSync(shared.pki.ca.cert), cert: readFileSync(shared.pki.client.cert), key: readFileSync(shared.pki.client.key), servername: 'localhost' });
    await once(s, 'secureConnect');
    s.write('GET / HTTP/1.1\r\n');
    assert.match((await readAll(s)).toString(), /^HTTP\/1\.1 408 /);
    assert.equal(l.handle.stats().http_header_timeouts_total, 1, 'the idle connection is not counted');
  });
});

test('a response that takes longer than the header deadline is not cut by it', async (t) => {
  // The program holds /slow until released; another client's deadline firing shows the time has passed.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const server = createHttpServer((req, res) => {
    if (req.url === '/slow') void released.then(() => res.end('late\n'));
    else res.end('ok\n');
  });
  const backend = await listenLocal(t, server);
  t.after(() => server.closeAllConnections());
  const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${backend.port}`, http: { headersTimeout: '300ms' } });
  const slow = tcpConnect({ host: '127.0.0.1', port: l.port });
  slow.write('GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const trickler = tcpConnect({ host: '127.0.0.1', port: l.port });
  trickler.on('error', () => {});
  trickler.write('GET / HTTP/1.1\r\n');
  assert.match((await readAll(trickler)).toString(), /^HTTP\/1\.1 408 /);
  release();
  assert.match((await readAll(slow)).toString(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*late\n$/);
  assert.equal(l.handle.stats().http_header_timeouts_total, 1);
});

describe('in worker threads', () => {
  test('an unusual client certificate and a hostile program end no worker: a bystander keeps its connection', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const unusual = unusualClient(shared.pki, shared.dir);
    const backend = await hostileProgram(t);
    const held = new Map([['ca', readFileSync(shared.pki.ca.cert)], ['cert', readFileSync(shared.pki.server.cert)], ['key', readFileSync(shared.pki.server.key)]]);
    const config = tlsListenerSchema.parse({ type: 'tls', mode: 'strict', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca' }, http: {} });
    const { log } = memoryLog('info');
    const handle: ListenerHandle = await startInWorkers({ name: 'w', field: 'listeners.w', config, type: tlsType, count: 1, secret: (n) => held.get(n)!, log });
    t.after(() => handle.close());
    const keepAlive = bystander(t, handle.address.port, shared.pki);
    assert.deepEqual(await keepAlive(), { status: 200, reused: false });
    assert.equal((await curl(handle.address.port, shared.pki, { client: unusual })).code, 0);
    assert.deepEqual(await keepAlive(), { status: 200, reused: true });
    const r = await curl(handle.address.port, shared.pki, { path: '/ctl-reason', args: ['-o', '/dev/null', '-w', '%{http_code}'] });
    assert.equal(r.stdout, '502');
    assert.deepEqual(await keepAlive(), { status: 200, reused: true });
    await until(() => handle.stats().upstream_failures_total === 1, 'the worker\'s counters (pushed each second)');
    assert.equal(handle.stats().worker_restarts_total ?? 0, 0);
  });
});

/**
 * A debug log whose first line matching `pattern` throws: a fault injected inside a connection
 * handler (the listener logs `connection open` from within them), with no test hook in the code.
 */
function faultyLog(pattern: RegExp): MemoryLog {
  const lines: string[] = [];
  let armed = true;
  const log = createLog({ level: 'debug', sink: { write: (l: string) => {
    if (armed && pattern.test(l)) {
      armed = false;
      throw new Error('injected fault');
    }
    lines.push(l);
  } } });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, records, text: () => lines.join(''), messages: () => records().map((r) => String(r.message)) };
}

describe('guard(): a throw inside a connection handler ends that connection only (workers: 0)', () => {
  for (const http of [false, true]) {
    test(`tls strict${http ? ' with http:' : ''}: the faulty connection is ended and counted, the next one is served`, async (t) => {
      const backend = http ? await httpBackend(t) : await echoServer(t);
      const log = faultyLog(/tls connection open/);
      const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, ...(http ? { http: {} } : {}) }, log);
      const first = await mtlsConnect(l.port, shared.pki);
      first.on('error', () => {});
      first.write(http ? 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' : 'ping\n');
      await closedWithin(first);
      await until(() => l.handle.stats().connection_faults_total === 1, 'the fault to be counted');
      const logged = records(log, 'a connection was ended by a fault in its handling');
      assert.equal(logged.length, 1);
      assert.equal(logged[0]!.reason, 'Error');
      const second = await mtlsConnect(l.port, shared.pki, shared.pki.client, true);
      // node:http aborts a request whose client half-closes, so HTTP asks for the close instead.
      if (http) second.write('GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      else second.end('pong\n');
      assert.match((await readAll(second)).toString(), http ? /"url":"\/second"/ : /^pong\n$/);
    });
  }

  test('psk server: the same', async (t) => {
    const backend = await echoServer(t);
    const log = faultyLog(/psk connection open/);
    const proxy = await startProxy(t, serverOptions(backend.port, { log: log.log }));
    const first = await pskConnect(proxy.address.port);
    first.on('error', () => {});
    first.write('ping\n');
    await closedWithin(first);
    await until(() => proxy.faults === 1, 'the fault to be counted');
    const second = await pskConnect(proxy.address.port, { allowHalfOpen: true });
    second.end('pong\n');
    assert.equal((await readAll(second)).toString(), 'pong\n');
  });

  test('tls client mode: the same', async (t) => {
    const backend = await echoServer(t);
    const server = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}` });
    const log = faultyLog(/tls connection open/);
    const client = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'localhost' } }, log);
    const first = tcpConnect({ host: '127.0.0.1', port: client.port });
    first.on('error', () => {});
    first.write('ping\n');
    await closedWithin(first);
    await until(() => client.handle.stats().connection_faults_total === 1, 'the fault to be counted');
    const second = tcpConnect({ host: '127.0.0.1', port: client.port, allowHalfOpen: true });
    second.end('pong\n');
    assert.equal((await readAll(second)).toString(), 'pong\n');
  });
});

test('a refused client with a huge subject and many SANs is logged with bounded fields', async (t) => {
  const huge = clientWith(shared.pki, shared.dir, 'huge', Array.from({ length: 12 }, (_, i) => `/OU=${String(i).padStart(60, 'x')}`).join(''),
    Array.from({ length: 20 }, (_, i) => `DNS.${i + 1}=host-${i}.example`));
  const backend = await echoServer(t);
  const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, clients: [{ uri: 'spiffe://nobody.test/x' }] });
  const s = await mtlsConnect(l.port, shared.pki, huge);
  s.on('error', () => {});
  await closedWithin(s);
  await until(() => records(l.log, 'tls client refused').length === 1, 'the refusal to be logged');
  const line = records(l.log, 'tls client refused')[0]!;
  assert.match(String(line.subject), /^OU=x+11,OU=x+10,.{100,}…\(\d+ chars\)$/);
  assert.ok(String(line.subject).length < 300);
  assert.deepEqual(line.dns, [...Array.from({ length: 8 }, (_, i) => `host-${i}.example`), '…(20 in all)']);
  assert.equal(line.certSha256, createHash('sha256').update(der(huge.cert)).digest('hex'), 'the hash names it exactly');
});

describe('refused client certificates: the client side learns why', () => {
  test('http: a 403 whose body is the reason, for no certificate, another CA and the allow-list; a bystander goes on', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const backend = await httpBackend(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, http: {}, clients: [{ uri: { prefix: 'spiffe://tee-init.test/' } }] });
    const keepAlive = bystander(t, l.port, shared.pki);
    assert.deepEqual(await keepAlive(), { status: 200, reused: false });
    const cases: [KeyPair | null, RegExp][] = [
      [null, /^client certificate refused: no client certificate$/],
      [shared.pki.stranger, /^client certificate refused: certificate not trusted \([A-Z_]+\)$/],
      [shared.pki.other, /^client certificate refused: not in the clients allow-list$/],
    ];
    for (const [client, body] of cases) {
      const r = await curl(l.port, shared.pki, { client, args: ['-w', '\n%{http_code}'] });
      assert.equal(r.code, 0, r.stderr);
      const [text, status] = r.stdout.split(/\n(?=\d+$)/);
      assert.equal(status, '403');
      assert.match(text!.trim(), body);
      assert.deepEqual(await keepAlive(), { status: 200, reused: true });
    }
    assert.equal(backend.seen.filter((s) => s.url !== '/bystander').length, 0, 'nothing refused reached the program');
    assert.equal(l.handle.stats().clients_refused_total, 3);
  });

  test('client mode against openssl s_server: its TLS alert is logged at warn with what to check', async (t) => {
    const server = await sServer(t, shared.pki);
    if (!server) return;
    const l = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'localhost' } });
    // Our certificate from a CA the server does not know: TLS 1.3 says so after our side of the handshake.
    l.secrets.set('cert', readFileSync(shared.pki.stranger.cert));
    l.secrets.set('key', readFileSync(shared.pki.stranger.key));
    await l.handle.reload();
    const c = tcpConnect({ host: '127.0.0.1', port: l.port });
    c.on('error', () => {});
    c.write('hello\n');
    await closedWithin(c);
    await until(() => records(l.log, 'refused the connection after the handshake').length === 1, 'the refusal to be logged');
    const line = records(l.log, 'refused the connection after the handshake')[0]!;
    assert.equal(line.severity, 'WARNING');
    assert.equal(line.reason, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA');
    assert.match(String(line.message), /TLS alert "unknown ca": check that our certificate \(tls\.cert\)/);
    assert.equal(l.handle.stats().handshake_failures_total, 1);
  });

  test('a tee-init pair: the server logs who and why, the client that it was most likely refused', async (t) => {
    const backend = await echoServer(t);
    const server = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${backend.port}`, clients: [{ uri: 'spiffe://nobody.test/x' }] });
    const client = await startTls(t, shared.pki, { mode: 'client', connect: `127.0.0.1:${server.port}`, tls: { cert: 'cert', key: 'key', ca: 'ca', serverName: 'localhost' } });
    const c = tcpConnect({ host: '127.0.0.1', port: client.port });
    c.on('error', () => {});
    await closedWithin(c);
    assert.equal(records(server.log, 'tls client refused')[0]!.reason, 'not in the clients allow-list');
    await until(() => records(client.log, 'closed the connection right after the handshake without sending anything').length === 1, 'the client side to say so');
    assert.match(String(records(client.log, 'right after the handshake')[0]!.message), /its log says why, 'tls client refused'/);
  });
});
