// The egress proxy with real clients: curl and Python requests (Debian's, /usr/bin/python3)
// through HTTP_PROXY reach a private service that accepts only Google-signed ID tokens for its
// own URL, minted by the real token sources against the loopback fakes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { once } from 'node:events';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { InitError } from '../../src/lib/errors.ts';
import { EXIT } from '../../src/lib/exit-codes.ts';
import type { ListenerHandle } from '../../src/proxy/listener.ts';
import { httpProxyEnv, httpProxySchema } from '../../src/config/listeners/http-proxy.ts';
import { httpProxyType } from '../../src/proxy/types/http-proxy/type.ts';
import { ISSUER } from '../fakes/attestation.ts';
import { startPrivateService, type PrivateService } from '../fakes/private-service.ts';
import { identityBench, SERVICE_HOST, type IdentityBench } from '../helpers/egress.ts';
import { createPki } from '../helpers/pki.ts';
import { trickle } from '../helpers/net.ts';
import { needs } from '../helpers/tools.ts';

const PYTHON = '/usr/bin/python3';

const HEAD_END = '\r\n\r\n';
/** Raw responses of the hostile destination, by request path (bytes as latin1). */
const HOSTILE: Record<string, string> = {
  '/status-099': 'HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n',
  '/reason-ctl': 'HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n',
  '/status-600': 'HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n',
  '/header-ctl': 'HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n',
  '/header-name': 'HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 0\r\n\r\n',
  '/huge-head': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(20_000)}\r\nContent-Length: 0\r\n\r\n`,
  '/switch': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nraw bytes',
  '/latin1': 'HTTP/1.1 200 OK\r\nX-Name: caf\xe9\r\nContent-Length: 2\r\n\r\nok',
  '/early-hints': `${'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'.repeat(3)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`,
};

/** Reads one request head, then answers what HOSTILE says for its path (or floods 1xx, or hangs up). */
function hostileAnswer(socket: TLSSocket): void {
  socket.on('error', () => {});
  let head = '';
  socket.on('data', function onData(chunk: Buffer) {
    head += chunk.toString('latin1');
    if (!head.includes(HEAD_END)) return;
    socket.off('data', onData);
    const path = head.split(' ')[1] ?? '';
    if (path === '/hang-up') return void socket.destroy();
    if (path === '/interim-flood') {
      // 1xx without end, as long as the proxy listens.
      const flood = () => {
        while (!socket.destroyed && socket.write('HTTP/1.1 102 Processing\r\n\r\n'));
        if (!socket.destroyed) socket.once('drain', flood);
      };
      return flood();
    }
    socket.end(Buffer.from(HOSTILE[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n', 'latin1'));
  });
}

describe('http-proxy (egress) with curl and Python requests', () => {
  let b: IdentityBench;
  let proxy: ListenerHandle;
  let env: Record<string, string>;
  let flaky: Server;
  let verifier: PrivateService;
  let flakyConnections = 0;
  let hostile: TlsServer;

  before(async () => {
    b = await identityBench();
    // Closes a kept-alive connection when its second request arrives, as a server whose idle
    // timeout fires just as the proxy reuses the connection.
    const perSocket = new WeakMap<object, number>();
    flaky = createServer({ cert: readFileSync(b.pki.server.cert), key: readFileSync(b.pki.server.key) }, (req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (req.url === '/hang') return; // never answers
      if (n === 2) return void req.socket.destroy();
      req.resume();
      res.end(`connection ${flakyConnections}`);
    });
    flaky.on('secureConnection', () => flakyConnections++);
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    // A destination a route covers that answers raw bytes, chosen by the request's path.
    hostile = createTlsServer({ cert: readFileSync(b.pki.server.cert), key: readFileSync(b.pki.server.key) }, (socket) => hostileAnswer(socket));
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    // A verifier of the collaborators' own, trusting the attestation service's keys.
    verifier = await startPrivateService({ url: 'https://verifier.a.run.app', issuer: ISSUER, jwks: b.world.key.jwks, cert: readFileSync(b.pki.server.cert), key: readFileSync(b.pki.server.key) });
    const address = `127.0.0.1:${b.service.port}`;
    const config = httpProxySchema.parse({
      type: 'http-proxy',
      listen: '127.0.0.1:0',
      env: true,
      routes: [
        { hosts: ['replace.a.run.app'], token: { kind: 'id-token', credentials: 'alice', audience: `https://${SERVICE_HOST}` }, authorization: 'replace', ca: 'service_ca', address },
        { hosts: ['serverless.a.run.app'], token: { kind: 'id-token', credentials: 'alice', audience: `https://${SERVICE_HOST}` }, header: 'x-serverless-authorization', ca: 'service_ca', address },
        { hosts: ['noca.a.run.app'], token: { kind: 'id-token', credentials: 'alice' }, address },
        { hosts: ['api.b.run.app'], pathPrefix: '/v1', token: { kind: 'id-token', credentials: 'alice' }, ca: 'service_ca', address },
        { hosts: ['verifier.a.run.app'], token: { kind: 'attestation', nonces: ['0123456789abcdef'] }, ca: 'service_ca', address: `127.0.0.1:${verifier.port}` },
        { hosts: ['flaky.a.run.app'], ca: 'service_ca', address: `127.0.0.1:${(flaky.address() as AddressInfo).port}` },
        { hosts: ['hostile.a.run.app'], ca: 'service_ca', address: `127.0.0.1:${(hostile.address() as AddressInfo).port}` },
        { hosts: ['*.a.run.app'], token: { kind: 'id-token', credentials: 'alice' }, ca: 'service_ca', address },
      ],
      tunnels: [address, `127.0.0.1:${(hostile.address() as AddressInfo).port}`],
    });
    proxy = await httpProxyType.start(config, b.env('egress'));
    env = { PATH: process.env.PATH!, ...httpProxyType.childEnv!(config, proxy.address) };
  });
  after(async () => {
    await proxy?.close();
    await verifier?.close();
    flaky?.closeAllConnections();
    flaky?.close();
    hostile?.close();
    await b?.close();
  });

  // Response headers go to a file (curl crashes writing them to /dev/stderr when that is a socket).
  let calls = 0;
  const curl = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const headFile = join(b.pki.dir, `head-${calls++}.txt`);
    const r = await execa('curl', ['-sS', '-D', headFile, ...args], { env: { ...env, ...extraEnv }, extendEnv: false, reject: false, timeout: 30_000 });
    return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, head: existsSync(headFile) ? readFileSync(headFile, 'utf8') : '' };
  };
  const idMints = (aud: string) => b.world.gcp.requestsOf('iam').filter((r) => r.idTokenAudience === aud).length;
  const last = () => b.service.records.at(-1)!;

  test('curl through http_proxy reaches the private service with an ID token for its URL; Host and SNI are its name', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const r = await curl([`http://${SERVICE_HOST}/hello?x=1`, '-H', 'X-Test: curl']);
    assert.equal(r.exitCode, 0, r.stderr);
    const body = JSON.parse(r.stdout);
    assert.equal(body.email, b.world.collaborators.alice.serviceAccount);
    assert.equal(body.path, '/hello');
    assert.equal(body.query, '?x=1');
    assert.equal(body.test, 'curl');
    assert.equal(last().host, SERVICE_HOST);
    assert.equal(last().servername, SERVICE_HOST);
  });

  test('hop-by-hop headers stay on their hop; end-to-end ones (repeats too) pass', async () => {
    const r = await curl([`http://${SERVICE_HOST}/h`, '-H', 'Connection: X-Secret-Hop', '-H', 'X-Secret-Hop: 1', '-H', 'Proxy-Authorization: Basic Zm9vOmJhcg==', '-H', 'Keep-Alive: timeout=5', '-H', 'Cookie: a=1', '-H', 'X-Twice: 1', '-H', 'X-Twice: 2']);
    assert.equal(r.exitCode, 0, r.stderr);
    const h = last().headers;
    for (const name of ['x-secret-hop', 'proxy-authorization', 'keep-alive', 'proxy-connection']) assert.equal(h[name], undefined, name);
    assert.equal(h.cookie, 'a=1');
    assert.equal(h['x-twice'], '1, 2');
    assert.match(r.head, /^x-service: hello/im, 'response headers pass back');
  });

  test('Python requests (HTTP_PROXY from the env): GET and POST on one kept-alive connection', async (t) => {
    if (!needs(t, PYTHON, 'apt-get install python3-requests')) return;
    const before = b.service.connections();
    const script = `
import json, requests, hashlib
s = requests.Session()
out = []
for i in range(5):
    r = s.get('http://${SERVICE_HOST}/py/%d' % i)
    out.append([r.status_code, r.json()['email']])
body = b'x' * 100000
r = s.post('http://${SERVICE_HOST}/post', data=body, headers={'Content-Type': 'application/octet-stream'})
out.append([r.status_code, r.json()['bodySha256'] == hashlib.sha256(body).hexdigest()])
print(json.dumps(out))`;
    const r = await execa(PYTHON, ['-c', script], { env, extendEnv: false, reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout) as [number, unknown][];
    assert.deepEqual(out.slice(0, 5), Array.from({ length: 5 }, () => [200, b.world.collaborators.alice.serviceAccount]));
    assert.deepEqual(out[5], [200, true]);
    assert.ok(b.service.connections() - before <= 1, 'upstream connections are kept alive and reused');
  });

  test('streaming bodies both ways: 8 MiB echoed, 64 MiB downloaded', async () => {
    const file = join(b.pki.dir, 'upload.bin');
    const data = randomBytes(8 * 1024 * 1024);
    writeFileSync(file, data);
    const echo = await execa('curl', ['-sS', '--fail', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, `http://${SERVICE_HOST}/echo`], { env, extendEnv: false, encoding: 'buffer', timeout: 60_000 });
    assert.equal(createHash('sha256').update(echo.stdout).digest('hex'), createHash('sha256').update(data).digest('hex'));
    const big = await curl(['--fail', '-o', '/dev/null', '-w', '%{size_download}', `http://${SERVICE_HOST}/bytes?n=${64 * 1024 * 1024}`]);
    assert.equal(big.stdout, String(64 * 1024 * 1024));
  });

  test('a destination not in routes: 403 with a reason, nothing sent; a request not in proxy form: 400', async () => {
    const n = b.service.records.length;
    const r = await curl(['http://example.com/']);
    assert.match(r.head, /^HTTP\/1.1 403/m);
    assert.match(r.head, /^x-tee-init-reason: destination example\.com:80 is not configured in routes/im);
    const ip = await curl(['http://127.0.0.1:1/'], { NO_PROXY: '', no_proxy: '' });
    assert.match(ip.head, /^HTTP\/1.1 403/m);
    const direct = await curl([`http://127.0.0.1:${proxy.address.port}/`], { http_proxy: '' });
    assert.match(direct.head, /^HTTP\/1.1 400/m);
    assert.equal(b.service.records.length, n);
    assert.ok(proxy.stats().http_proxy_refused_total! >= 3);
  });

  test('a path prefix is a boundary: /v1 and /v1/x pass; /v1x, /v1/../admin (resolved before matching, as sent) do not', async () => {
    const codes = [];
    for (const p of ['/v1', '/v1/x', '/v1x', '/v1/../admin', '/v1/%2e%2e/admin']) {
      const r = await curl(['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `http://api.b.run.app${p}`]);
      codes.push(r.stdout);
    }
    assert.deepEqual(codes, ['200', '200', '403', '403', '403']);
    assert.deepEqual(b.service.records.slice(-2).map((r) => r.path), ['/v1', '/v1/x']);
  });

  test('encoded separators do not escape a path prefix (CVE-2021-29492); an escaped slash inside it passes as sent', async () => {
    const n = b.service.records.length;
    const escapes = ['/v1/..%2fadmin', '/v1/%2e%2e%2fadmin', '/v1/..%5cadmin', '/v1/x/..%2f..%2fadmin', '/v1/..%2Fadmin', '/v1/..;/admin', '/v1/.%2e/admin'];
    for (const p of escapes) {
      const r = await curl(['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `http://api.b.run.app${p}`]);
      assert.equal(r.stdout, '403', p);
    }
    assert.equal(b.service.records.length, n, 'none reached the destination');
    const inside = await curl(['--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', 'http://api.b.run.app/v1/a%2Fb/..%2fc']);
    assert.equal(inside.stdout, '200');
    assert.equal(b.service.records.at(-1)!.path, '/v1/a%2Fb/..%2fc', 'forwarded as sent');
  });

  test("the program's own Authorization is kept; replace and X-Serverless-Authorization routes", async () => {
    const own = await curl([`http://${SERVICE_HOST}/own`, '-H', 'Authorization: Bearer programs-own-token']);
    assert.match(own.head, /^HTTP\/1.1 401/m, 'the service saw the program token, not ours');
    assert.equal(last().authorization, 'Bearer programs-own-token');
    const replaced = await curl(['http://replace.a.run.app/r', '-H', 'Authorization: Bearer programs-own-token']);
    assert.equal(JSON.parse(replaced.stdout).email, b.world.collaborators.alice.serviceAccount);
    assert.notEqual(last().authorization, 'Bearer programs-own-token');
    await curl(['http://serverless.a.run.app/s', '-H', 'Authorization: Bearer programs-own-token']);
    assert.equal(last().authorization, 'Bearer programs-own-token');
    assert.match(String(last().headers['x-serverless-authorization']), /^Bearer eyJ/);
  });

  test('100 concurrent requests (curl --parallel) cause one mint', async () => {
    const host = 'concurrent.a.run.app';
    const before = idMints(`https://${host}`);
    const urls = Array.from({ length: 100 }, (_, i) => `http://${host}/c/${i}`);
    const r = await execa('curl', ['-sS', '-Z', '--parallel-immediate', '--parallel-max', '100', '-o', '/dev/null', '-w', '%{http_code}\\n', ...urls.flatMap((u) => [u, '-o', '/dev/null'])], { env, extendEnv: false, reject: false, timeout: 60_000 });
    assert.deepEqual(r.stdout.trim().split('\n'), Array(100).fill('200'), r.stderr);
    assert.equal(idMints(`https://${host}`) - before, 1);
  });

  test('a token that expires mid-run is replaced (the service checks expiry on the same clock)', async () => {
    const host = 'clock.a.run.app';
    const first = await curl([`http://${host}/1`]);
    assert.equal(JSON.parse(first.stdout).email, b.world.collaborators.alice.serviceAccount);
    const t1 = last().authorization;
    b.advance(2 * 3600_000); // the first token is long expired now
    const second = await curl([`http://${host}/2`]);
    assert.equal(JSON.parse(second.stdout).email, b.world.collaborators.alice.serviceAccount, second.stdout);
    assert.notEqual(last().authorization, t1);
    assert.equal(idMints(`https://${host}`), 2);
  });

  test('the destination certificate is verified: the system roots do not know the test CA', async () => {
    const r = await curl(['http://noca.a.run.app/x']);
    assert.match(r.head, /^HTTP\/1.1 502/m);
    assert.match(r.head, /^x-tee-init-reason: certificate of noca\.a\.run\.app not accepted/im);
  });

  test('CONNECT: refused unless listed in tunnels (then piped, without a token)', async () => {
    const refused = await curl(['-p', '--cacert', b.pki.ca.cert, `https://${SERVICE_HOST}/`], { https_proxy: env.http_proxy! });
    assert.notEqual(refused.exitCode, 0);
    assert.match(refused.head, /^HTTP\/1.1 403/m);
    assert.match(refused.head, /^x-tee-init-reason: CONNECT hello-abc\.a\.run\.app:443 is refused/im);
    const through = await curl(['--cacert', b.pki.ca.cert, `https://127.0.0.1:${b.service.port}/t`], { https_proxy: env.http_proxy!, NO_PROXY: '', no_proxy: '' });
    assert.match(through.head, /^HTTP\/1.1 200 Connection Established/m, through.stderr);
    assert.match(through.head, /^HTTP\/1.1 401/m, 'reached the service, which wants a token');
  });

  test('a kept-alive upstream connection the server closed: a body-less request is sent again on a new one, a POST is not', async () => {
    const first = await curl(['http://flaky.a.run.app/1']);
    assert.equal(first.stdout, 'connection 1');
    const second = await curl(['http://flaky.a.run.app/2']);
    assert.equal(second.stdout, 'connection 2', 'retried on a second connection');
    const post = await curl(['--data-binary', 'x', 'http://flaky.a.run.app/3']);
    assert.match(post.head, /^HTTP\/1.1 502/m);
    assert.match(post.head, /^x-tee-init-reason: upstream flaky\.a\.run\.app: ECONNRESET/im);
  });

  test('reload() takes a rotated CA for new connections; an upstream that stops answering gets 504 after idleTimeout', async () => {
    const other = createPki(join(b.pki.dir, 'other'));
    b.secrets.rot_ca = readFileSync(other.ca.cert);
    const flakyAddress = `127.0.0.1:${(flaky.address() as AddressInfo).port}`;
    const second = await httpProxyType.start(
      httpProxySchema.parse({ type: 'http-proxy', listen: '127.0.0.1:0', idleTimeout: '300ms', routes: [{ hosts: ['flaky.a.run.app'], ca: 'rot_ca', address: flakyAddress }] }),
      b.env('egress-2'),
    );
    try {
      const via = { http_proxy: `http://127.0.0.1:${second.address.port}` };
      const before = await curl(['http://flaky.a.run.app/x'], via);
      assert.match(before.head, /^HTTP\/1.1 502/m);
      b.secrets.rot_ca = readFileSync(b.pki.ca.cert);
      await second.reload();
      const after = await curl(['http://flaky.a.run.app/x'], via);
      assert.match(after.stdout, /^connection \d+$/);
      b.secrets.rot_ca = Buffer.from('not a certificate');
      await assert.rejects(second.reload(), /routes\[0\]\.ca: secret rot_ca is not usable as CA certificates/);
      assert.match((await curl(['http://flaky.a.run.app/x'], via)).stdout, /^connection \d+$/, 'the old CA stays in use');
      const hung = await curl(['http://flaky.a.run.app/hang'], via);
      assert.match(hung.head, /^HTTP\/1.1 504/m);
    } finally {
      await second.close();
    }
  });

  test('an attestation route: the verifier gets a Confidential Space token for its URL, with the nonces', async () => {
    const r = await curl(['http://verifier.a.run.app/attest']);
    assert.equal(JSON.parse(r.stdout).email, `image ${b.world.imageDigest}`, r.stdout);
    const asked = b.world.teeserver!.requests.at(-1)!;
    assert.deepEqual(asked.options, { audience: 'https://verifier.a.run.app', token_type: 'OIDC', nonces: ['0123456789abcdef'] });
  });

  test('a destination sending an invalid response gets the program a 502 with a reason; the proxy keeps serving', async () => {
    const expect: Record<string, RegExp> = {
      '/status-099': /not a final HTTP status/,
      '/reason-ctl': /reason phrase holds control characters/,
      '/status-600': /not a final HTTP status/,
      '/header-ctl': /malformed HTTP response/,
      '/header-name': /malformed HTTP response/,
      '/huge-head': /response head over 16384 bytes/,
      '/switch': /101 Switching Protocols/,
      '/interim-flood': /more than 16 interim/,
      '/hang-up': /upstream hostile\.a\.run\.app: ECONNRESET/,
    };
    for (const [path, reason] of Object.entries(expect)) {
      const r = await curl([`http://hostile.a.run.app${path}`]);
      assert.match(r.head, /^HTTP\/1.1 502 /m, `${path}: ${r.head}${r.stderr}`);
      const header = /^x-tee-init-reason: (.*)$/im.exec(r.head)?.[1] ?? '';
      assert.match(header, reason, path);
    }
    // What is valid passes: obs-text (Latin-1) in a value, interim responses before the final one.
    const latin1 = await curl(['http://hostile.a.run.app/latin1']);
    assert.match(latin1.head, /^HTTP\/1.1 200 /m);
    assert.ok(Buffer.from(latin1.head, 'latin1').includes(Buffer.from('caf\xe9', 'latin1')) || latin1.head.includes('caf'), 'the value passes');
    const hints = await curl(['http://hostile.a.run.app/early-hints']);
    assert.equal(hints.stdout, 'ok');
    const fine = await curl([`http://${SERVICE_HOST}/after-hostile`]);
    assert.equal(fine.exitCode, 0, fine.stderr);
    assert.equal(JSON.parse(fine.stdout).path, '/after-hostile');
    assert.equal(proxy.stats().connection_faults_total, 0, 'each was handled at its root, not by the boundary');
  });

  test('a handler that throws ends that one connection: counted, logged without the value, the listener serves on', async () => {
    // A token source that is not the init's (whose tokens are checked): its value cannot go in a header.
    const base = b.env('egress-faulty');
    const faulty = await httpProxyType.start(
      httpProxySchema.parse({ type: 'http-proxy', listen: '127.0.0.1:0', routes: [{ hosts: [SERVICE_HOST], token: { kind: 'id-token', credentials: 'alice' }, ca: 'service_ca', address: `127.0.0.1:${b.service.port}` }, { hosts: ['open.a.run.app'], ca: 'service_ca', address: `127.0.0.1:${b.service.port}` }] }),
      { ...base, tokens: { source: () => ({ get: async () => ({ value: 'x\r\nX-Injected: 1', expiresAt: Date.now() + 3600_000 }) }) } },
    );
    try {
      const via = { http_proxy: `http://127.0.0.1:${faulty.address.port}` };
      const broken = await curl([`http://${SERVICE_HOST}/x`], via);
      assert.notEqual(broken.exitCode, 0, 'that connection was ended');
      assert.equal(faulty.stats().connection_faults_total, 1);
      const ok = await curl(['http://open.a.run.app/y'], via);
      assert.match(ok.head, /^HTTP\/1.1 401/m, 'the next connection is served (the service wants a token)');
      assert.match(b.logs.text(), /listener egress-faulty: a connection was ended by a fault/);
      assert.doesNotMatch(b.logs.text(), /X-Injected/);
    } finally {
      await faulty.close();
    }
  });

  test('a program trickling header lines is cut at headersTimeout (408)', async () => {
    const slow = await httpProxyType.start(httpProxySchema.parse({ type: 'http-proxy', listen: '127.0.0.1:0', headersTimeout: '1s', routes: [{ hosts: ['x.a.run.app'] }] }), b.env('egress-slow'));
    try {
      const answer = await trickle(slow.address.port, 'GET http://x.a.run.app/ HTTP/1.1\r\nHost: x.a.run.app\r\n');
      assert.match(answer, /^HTTP\/1.1 408/);
    } finally {
      await slow.close();
    }
  });

  test('a *.domain route kept alive to ever new hosts holds at most 64 idle upstream connections', async () => {
    const wide = await httpProxyType.start(httpProxySchema.parse({ type: 'http-proxy', listen: '127.0.0.1:0', routes: [{ hosts: ['*.a.run.app'], ca: 'service_ca', address: `127.0.0.1:${b.service.port}` }] }), b.env('egress-wide'));
    try {
      // Absolute-form requests as any HTTP_PROXY client sends them, one new host each (no token: the service answers 401).
      const agent = new HttpAgent({ keepAlive: true });
      for (let i = 0; i < 100; i++) {
        const status = await new Promise<number | undefined>((resolve, reject) => {
          const host = `n${i}.a.run.app`;
          httpRequest({ host: '127.0.0.1', port: wide.address.port, path: `http://${host}/`, headers: { host }, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
          }).on('error', reject).end();
        });
        assert.equal(status, 401);
      }
      agent.destroy();
      const idle = wide.stats().http_proxy_idle_upstream_connections!;
      assert.ok(idle > 0 && idle <= 64, String(idle));
    } finally {
      await wide.close();
    }
  });

  test('a request host that is no DNS name is refused before it becomes an SNI or an audience (cache key, mint)', async () => {
    const mints = b.tokens.stats().mints;
    for (const host of [`${'a'.repeat(64)}.a.run.app`, `${'abcdefgh.'.repeat(40)}a.run.app`]) {
      const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `http://${host}/`]);
      assert.equal(r.stdout, '400', host.slice(0, 20));
    }
    assert.equal(b.tokens.stats().mints, mints);
  });

  test('a refused request whose body does not end: answered, then the connection is closed (not drained forever)', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: proxy.address.port });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.write('POST http://example.com/ HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.from(`10000\r\n${'x'.repeat(0x10000)}\r\n`);
    let sent = 0;
    // Body chunks without end, as long as the proxy takes them; at most 256 MiB.
    const pump = () => {
      while (!socket.destroyed && sent < 256 * 1024 * 1024) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    const closed = new Promise((resolve) => socket.once('close', resolve));
    pump();
    await closed;
    assert.ok(sent < 256 * 1024 * 1024, 'closed by the proxy, not by the test');
    assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1.1 403 [\s\S]*connection: close/i);
  });

  test('a tunnel whose destination resets: that tunnel ends, the proxy serves on', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: proxy.address.port });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.write(`CONNECT 127.0.0.1:${(hostile.address() as AddressInfo).port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    // Not TLS: the destination (a TLS server) gives up on the handshake and closes.
    socket.write(Buffer.from('HTTP/1.1 200 OK\r\n\x00\x01\x02garbage\r\n\r\n', 'latin1'));
    await once(socket, 'close');
    assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1.1 200 Connection Established\r\n\r\n/);
    const fine = await curl([`http://${SERVICE_HOST}/after-tunnel`]);
    assert.equal(JSON.parse(fine.stdout).path, '/after-tunnel');
    assert.equal(proxy.stats().connection_faults_total, 0);
  });

  test('a WebSocket upgrade is refused, not relayed', async () => {
    const r = await curl([`http://${SERVICE_HOST}/ws`, '-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket']);
    assert.match(r.head, /^HTTP\/1.1 501/m);
  });

  test('a port in use: a config error (78) naming the listener field', async () => {
    const config = httpProxySchema.parse({ type: 'http-proxy', listen: `127.0.0.1:${proxy.address.port}`, routes: [{ hosts: ['x.a.run.app'] }] });
    const err = await httpProxyType.start(config, b.env('egress-dup')).catch((e: unknown) => e);
    assert.ok(err instanceof InitError, String(err));
    assert.equal(err.exitCode, EXIT.config);
    assert.match(err.message, new RegExp(`^listeners\\.egress-dup\\.listen 127\\.0\\.0\\.1:${proxy.address.port}: cannot listen \\(EADDRINUSE\\)`));
  });

  test('the listen address must be loopback; a bare * is refused; env helper', () => {
    const base = { type: 'http-proxy', routes: [{ hosts: ['*.run.app'] }] };
    assert.match(JSON.stringify(httpProxySchema.safeParse({ ...base, listen: '0.0.0.0:8000' }).error?.issues), /must be a loopback address/);
    assert.match(JSON.stringify(httpProxySchema.safeParse({ ...base, listen: '127.0.0.1:8000', routes: [{ hosts: ['*'] }] }).error?.issues), /open relay/);
    assert.match(JSON.stringify(httpProxySchema.safeParse({ ...base, listen: '127.0.0.1:8000', routes: [{ hosts: ['*.app'] }] }).error?.issues), /top-level domain/);
    assert.match(JSON.stringify(httpProxySchema.safeParse({ ...base, listen: '127.0.0.1:8000', routes: [] }).error?.issues), /at least one route/);
    const cfg = httpProxySchema.parse({ ...base, listen: '127.0.0.1:8000', env: { noProxy: ['internal.example'], httpsProxy: true } });
    assert.deepEqual(httpProxyEnv(cfg, { host: '127.0.0.1', port: 8000 }), {
      HTTP_PROXY: 'http://127.0.0.1:8000', http_proxy: 'http://127.0.0.1:8000', HTTPS_PROXY: 'http://127.0.0.1:8000', https_proxy: 'http://127.0.0.1:8000',
      NO_PROXY: 'localhost,127.0.0.1,::1,internal.example', no_proxy: 'localhost,127.0.0.1,::1,internal.example',
    });
    assert.deepEqual(httpProxyEnv(httpProxySchema.parse({ ...base, listen: '127.0.0.1:8000' }), { host: '127.0.0.1', port: 1 }), {});
  });

  test('no token in the log (trace level), whatever happened above', () => {
    const text = b.logs.text();
    assert.ok(text.includes('egress'), 'the proxy logged');
    const tokens = b.service.records.flatMap((r) => [r.authorization, r.headers['x-serverless-authorization']]).filter((v): v is string => typeof v === 'string' && v.startsWith('Bearer eyJ'));
    assert.ok(tokens.length > 10);
    for (const t of new Set(tokens)) {
      const jwt = t.slice('Bearer '.length);
      assert.ok(!text.includes(jwt) && !text.includes(jwt.split('.')[2]!), 'a token was logged');
    }
    assert.doesNotMatch(text, /ya29\./);
  });
});
