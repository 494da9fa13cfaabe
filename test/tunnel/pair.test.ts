// tee-init tunnel client ↔ tee-init tunnel server, both started in-process through the
// ListenerType with a real ListenerEnv: h2c and TLS, POST and CONNECT, inner mutual TLS,
// half-close, many tunnels over one HTTP/2 connection.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { congratsServer, exchange, outcome, startTunnel, tempDir, twoPkis } from './peers.ts';

const GREETING = 'Congrats! You have connected through the tunnel.\n';

test('h2c POST: a TCP connection crosses the tunnel both ways, half-close included', async (t) => {
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, path: '/tunnel' });
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/tunnel` });
  // The echo comes back only after our FIN went through as END_STREAM; the server's FIN ends it.
  assert.equal(await exchange(client.port, 'hello\n'), `${GREETING}hello\n`);
  assert.equal(await exchange(client.port, ''), GREETING);
  const s = server.handle.stats();
  assert.equal(s.established_total, 2);
  assert.equal(s.sessions_total, 1, 'both tunnels shared one HTTP/2 connection');
  assert.equal(client.handle.stats().sessions_total, 1);
  assert.equal(client.handle.stats().bytes_from_client_total, 6);
});

test('TLS + CONNECT + inner mutual TLS: end to end, the program sees plaintext', async (t) => {
  const { secrets } = twoPkis(tempDir(t, 'tee-init-tunnel-'));
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`,
    tls: { cert: 'h2_cert', key: 'h2_key' }, inner: { tls: { cert: 'server_cert', key: 'server_key', ca: 'ca' } },
  }, secrets);
  const client = await startTunnel(t, 'out', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `https://localhost:${server.port}/`, method: 'CONNECT',
    tls: { ca: 'ca' }, inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', serverName: 'localhost' } },
  }, secrets);
  assert.equal(await exchange(client.port, 'over mTLS\n'), `${GREETING}over mTLS\n`);
  assert.equal(server.handle.stats().handshake_failures_total, 0);
});

test('inner mutual TLS: a client certificate from another CA is refused, the program never sees it, both ends log why', async (t) => {
  const { secrets } = twoPkis(tempDir(t, 'tee-init-tunnel-'));
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true,
    inner: { tls: { cert: 'server_cert', key: 'server_key', ca: 'ca' } },
  }, secrets);
  const client = await startTunnel(t, 'out', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/`,
    inner: { tls: { cert: 'other_cert', key: 'other_key', ca: 'ca', serverName: 'localhost' } },
  }, secrets);
  const r = await outcome(client.port);
  assert.equal(r.data, '');
  assert.equal(backend.accepted, 0);
  assert.equal(server.handle.stats().handshake_failures_total, 1);
  assert.ok(server.log.messages().includes('tunnel inner TLS handshake failed; closing the tunnel'), server.log.text());
  // The client side says so too (a warning with what to fix), not a silent close: the server
  // resets the stream with INADEQUATE_SECURITY, as Node sends no TLS alert for it.
  const lines = client.log.records().filter((r) => r.severity === 'WARNING' && r.message === 'tunnel inner TLS handshake failed; closing the connection');
  assert.equal(lines.length, 1, client.log.text());
  assert.match(String(lines[0]!.reason), /refused this side's inner TLS client certificate.*inner\.tls\.cert/);
  assert.equal(client.handle.stats().handshake_failures_total, 1);

  // And a client that trusts only another CA refuses the server.
  const wary = await startTunnel(t, 'out2', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/`,
    inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'other_ca', serverName: 'localhost' } },
  }, secrets);
  assert.equal((await outcome(wary.port)).data, '');
  assert.equal(wary.handle.stats().handshake_failures_total, 1);
  assert.equal(backend.accepted, 0);
});

test('100 concurrent tunnels over one HTTP/2 connection', async (t) => {
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, maxStreams: 100 });
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => exchange(client.port, `tunnel ${i}\n`)));
  results.forEach((r, i) => assert.equal(r, `${GREETING}tunnel ${i}\n`));
  assert.equal(server.handle.stats().sessions_total, 1);
  assert.equal(server.handle.stats().established_total, 100);
});

test('wrong path or method: refused with a status, the TCP connection closed, logged once with the status', async (t) => {
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, path: '/t', methods: ['POST'] });
  const wrongPath = await startTunnel(t, 'a', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/other` });
  const connect = await startTunnel(t, 'b', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/t`, method: 'CONNECT' });
  assert.equal((await outcome(wrongPath.port)).data, '');
  assert.equal((await outcome(connect.port)).data, '');
  assert.equal(backend.accepted, 0);
  const refused = (m: typeof wrongPath) => m.log.records().filter((r) => String(r.message).startsWith('tunnel refused by the server'));
  assert.deepEqual(refused(wrongPath).map((r) => r.status), [404]);
  assert.deepEqual(refused(connect).map((r) => r.status), [405]);
  assert.equal(server.handle.stats().refused_total, 2);
});

test('upstream down: 502 to the client, which closes its TCP connection', async (t) => {
  const backend = await congratsServer(t);
  const port = backend.port;
  await new Promise<void>((r) => backend.server.close(() => r()));
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${port}`, h2c: true });
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  assert.equal((await outcome(client.port)).data, '');
  assert.deepEqual(client.log.records().filter((r) => r.status !== undefined).map((r) => r.status), [502]);
  assert.equal(server.handle.stats().upstream_failures_total, 1);
});

test('reload: new tunnels use rotated inner TLS material, unusable material is refused and the old kept', async (t) => {
  const { secrets } = twoPkis(tempDir(t, 'tee-init-tunnel-'));
  const backend = await congratsServer(t);
  // The server's view of its secrets: what rotation would swap.
  const live = new Map(secrets);
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true,
    inner: { tls: { cert: 'server_cert', key: 'server_key', ca: 'ca' } },
  }, live);
  const url = `http://127.0.0.1:${server.port}/`;
  const ours = await startTunnel(t, 'ours', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url, inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', serverName: 'localhost' } } }, secrets);
  const theirs = await startTunnel(t, 'theirs', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url, inner: { tls: { cert: 'other_cert', key: 'other_key', ca: 'ca', serverName: 'localhost' } } }, secrets);
  assert.equal(await exchange(ours.port, 'a\n'), `${GREETING}a\n`);

  // Broken material: reload rejects, tunnels keep working with the old.
  live.set('ca', Buffer.from('not a certificate'));
  await assert.rejects(server.handle.reload(), /listeners\.in\.inner\.tls: the secrets .* do not make a TLS context/);
  assert.equal(await exchange(ours.port, 'b\n'), `${GREETING}b\n`);

  // The client CA rotated to the other one: the other client gets in, ours no longer.
  live.set('ca', secrets.get('other_ca')!);
  await server.handle.reload();
  assert.equal(await exchange(theirs.port, 'c\n'), `${GREETING}c\n`);
  assert.equal((await outcome(ours.port)).data, '');
});

test('maxStreams: tunnels beyond the limit wait for a free stream on the shared connection, then go through', async (t) => {
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, maxStreams: 2 });
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  // Two long-lived tunnels take both streams.
  const open = await Promise.all([0, 1].map(async () => {
    const s = tcpConnect({ port: client.port, host: '127.0.0.1', allowHalfOpen: true });
    await once(s, 'data');
    return s;
  }));
  // A third is accepted locally but gets no stream until one of them ends.
  const third = exchange(client.port, 'third\n');
  let done = false;
  void third.then(() => (done = true));
  // A round trip to the program directly (not a tunnel): time for the third to get through, if it could.
  await exchange(backend.port, '');
  assert.equal(done, false);
  assert.equal(backend.accepted, 3, 'the program saw the two tunnels and the direct connection only');
  open[0]!.end();
  assert.equal(await third, `${GREETING}third\n`);
  open[1]!.destroy();
  open[0]!.destroy();
  assert.equal(server.handle.stats().sessions_total, 1);
});
