// The egress proxy with real clients: curl and Python requests (Debian's, /usr/bin/python3)
// through HTTP_PROXY reach a private service that accepts only Google-signed ID tokens for its
// own URL, minted by the real token sources against the loopback fakes.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { InitError } from '../../src/errors.ts';
import { EXIT } from '../../src/exit-codes.ts';
import type { ListenerHandle } from '../../src/proxy/listener.ts';
import { httpProxyEnv } from '../../src/proxy/types/http-proxy-env.ts';
import { httpProxySchema, httpProxyType } from '../../src/proxy/types/http-proxy.ts';
import { ISSUER } from '../fakes/attestation.ts';
import { startPrivateService, type PrivateService } from '../fakes/private-service.ts';
import { identityBench, SERVICE_HOST, type IdentityBench } from '../helpers/egress.ts';
import { createPki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';

const PYTHON = '/usr/bin/python3';

describe('http-proxy (egress) with curl and Python requests', () => {
  let b: IdentityBench;
  let proxy: ListenerHandle;
  let env: Record<string, string>;
  let flaky: Server;
  let verifier: PrivateService;
  let flakyConnections = 0;

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
        { hosts: ['*.a.run.app'], token: { kind: 'id-token', credentials: 'alice' }, ca: 'service_ca', address },
      ],
      tunnels: [address],
    });
    proxy = await httpProxyType.start(config, b.env('egress'));
    env = { PATH: process.env.PATH!, ...httpProxyType.childEnv!(config, proxy.address) };
  });
  after(async () => {
    await proxy?.close();
    await verifier?.close();
    flaky?.closeAllConnections();
    flaky?.close();
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
    const tokens = b.service.records.map((r) => [r.authorization, r.headers['x-serverless-authorization']]).flat().filter((v): v is string => typeof v === 'string' && v.startsWith('Bearer eyJ'));
    assert.ok(tokens.length > 10);
    for (const t of new Set(tokens)) {
      const jwt = t.slice('Bearer '.length);
      assert.ok(!text.includes(jwt) && !text.includes(jwt.split('.')[2]!), 'a token was logged');
    }
    assert.doesNotMatch(text, /ya29\./);
  });
});
