// The tunnel's share of the leak scan (test/integration/leak.test.ts scans whole boots): every
// log line both ends write at trace level, through successful tunnels and the failures that log
// the most (bearer refused, inner handshake refused, upstream down), holds no token and no byte
// of the TLS keys. The whole-init version is in test/pending/tunnel-e2e.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { congratsServer, exchange, jwtMinter, outcome, startTunnel, tempDir, twoPkis, type Started } from './peers.ts';

function needles(secrets: Map<string, Buffer>, tokens: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, v] of secrets) {
    if (!name.endsWith('key')) continue;
    // The base64 body of the PEM, line by line (any one line would be a leak), and as hex/base64 of the whole.
    const body = v.toString('utf8').split('\n').filter((l) => l && !l.startsWith('-----'));
    body.forEach((l, i) => out.set(`${name} PEM line ${i}`, l));
    out.set(`${name} (hex)`, v.toString('hex').slice(0, 64));
  }
  tokens.forEach((tk, i) => {
    out.set(`token ${i}`, tk);
    out.set(`token ${i} signature`, tk.split('.')[2]!);
    out.set(`token ${i} payload`, tk.split('.')[1]!);
  });
  return out;
}

test('no token or key byte in either end\'s log, at trace level, through successes and failures', async (t) => {
  const { secrets } = twoPkis(tempDir(t, 'tee-init-tunnel-leak-'));
  const backend = await congratsServer(t);
  const minter = await jwtMinter(t);
  const probe = await startTunnel(t, 'probe', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true });
  const port = probe.port;
  await probe.handle.close();
  const url = `http://127.0.0.1:${port}`;
  const inner = { tls: { cert: 'server_cert', key: 'server_key', ca: 'ca' } };
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: `127.0.0.1:${port}`, connect: `127.0.0.1:${backend.port}`, h2c: true, inner, bearer: { audience: url, jwks: minter.jwksUrl } }, secrets);
  const good = await startTunnel(t, 'good', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `${url}/`, token: { kind: 'id-token' }, inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', serverName: 'localhost' } } }, secrets, minter);
  const wrongCert = await startTunnel(t, 'wrong-cert', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `${url}/`, token: { kind: 'id-token' }, inner: { tls: { cert: 'other_cert', key: 'other_key', ca: 'ca', serverName: 'localhost' } } }, secrets, minter);
  const expired = await jwtMinter(t);
  expired.claims.ttlSeconds = -3600;
  const badToken = await startTunnel(t, 'bad-token', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `${url}/`, token: { kind: 'id-token' }, inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', serverName: 'localhost' } } }, secrets, expired);

  assert.match(await exchange(good.port, 'x\n'), /^Congrats/);
  assert.equal((await outcome(wrongCert.port)).data, '');
  assert.equal((await outcome(badToken.port)).data, '');
  await new Promise<void>((r) => backend.server.close(() => r()));
  assert.equal((await outcome(good.port)).data, '', 'upstream down');

  const all: Started[] = [server, good, wrongCert, badToken];
  const text = all.map((s) => s.log.text()).join('\n');
  assert.ok(all.every((s) => s.log.records().some((r) => r.severity === 'DEBUG')), 'debug records were written');
  assert.ok(minter.issued.length >= 2 && expired.issued.length >= 1);
  const found = [...needles(secrets, [...minter.issued, ...expired.issued])].filter(([, n]) => text.includes(n)).map(([w]) => w);
  assert.deepEqual(found, []);
});
