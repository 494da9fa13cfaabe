// Volume, backpressure and failure: 1 GiB through one tunnel then half-close, a program that
// stops reading (flow control must stop the sender, not buffer), the server going away
// mid-stream (the client reconnects for new connections), and config mistakes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { once } from 'node:events';
import { type AddressInfo, connect as tcpConnect, createServer, type Socket } from 'node:net';
import { createServer as createH2Server } from 'node:http2';
import { test } from 'node:test';
import { tunnelType } from '../../src/proxy/types/tunnel/type.ts';
import { congratsServer, exchange, outcome, startTunnel } from './peers.ts';

const GREETING = 'Congrats! You have connected through the tunnel.\n';

test('1 GiB through one tunnel, then half-close: every byte arrives in order, the answer comes back', async (t) => {
  // The program checksums what it gets and answers once the client half-closes (CRC-32: cheap
  // enough that the tunnel, not the check, is what this test spends its time on).
  const sink = createServer({ allowHalfOpen: true }, (s) => {
    let crc = 0;
    let n = 0;
    s.on('data', (c: Buffer) => {
      crc = crc32(c, crc);
      n += c.length;
    });
    s.on('end', () => s.end(`${n} ${crc}\n`));
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  t.after(() => sink.close());
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${(sink.address() as AddressInfo).port}`, h2c: true });
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });

  const TOTAL = 1024 ** 3;
  const block = randomBytes(1 << 20);
  let expected = 0;
  const s = tcpConnect({ port: client.port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  const answer: Buffer[] = [];
  s.on('data', (c: Buffer) => answer.push(c));
  for (let i = 0; i < TOTAL / block.length; i++) {
    // Each MiB differs (its index in front), so a reordered or repeated block changes the hash.
    const chunk = Buffer.from(block);
    chunk.writeUInt32BE(i, 0);
    expected = crc32(chunk, expected);
    if (!s.write(chunk)) await once(s, 'drain');
  }
  s.end();
  await once(s, 'end');
  assert.equal(Buffer.concat(answer).toString(), `${TOTAL} ${expected}\n`);
  assert.equal(server.handle.stats().bytes_from_client_total, TOTAL);
});

test('a program that stops reading stops the sender (flow control), with bounded buffering; then everything arrives', async (t) => {
  let upstream: Socket | undefined;
  let received = 0;
  const accepted = Promise.withResolvers<void>();
  const slow = createServer({ allowHalfOpen: true }, (s) => {
    upstream = s;
    s.pause(); // reads nothing until resumed
    s.on('data', (c: Buffer) => (received += c.length));
    accepted.resolve();
  });
  slow.listen(0, '127.0.0.1');
  await once(slow, 'listening');
  t.after(() => slow.close());
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${(slow.address() as AddressInfo).port}`, h2c: true, streamWindow: 262_144 });
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/`, streamWindow: 262_144 });

  const s = tcpConnect({ port: client.port, host: '127.0.0.1' });
  await once(s, 'connect');
  await accepted.promise;
  const chunk = Buffer.alloc(1 << 20, 7);
  let written = 0;
  // Write until the whole path stops taking data: no 'drain' for a second while nothing reads.
  for (;;) {
    written += chunk.length;
    if (s.write(chunk)) continue;
    const drained = await Promise.race([once(s, 'drain').then(() => true), new Promise((r) => setTimeout(r, 1000, false))]);
    if (!drained) break;
    assert.ok(written < 512 * 2 ** 20, `the sender was never stopped: ${written} bytes taken`);
  }
  // Kernel socket buffers on three TCP hops plus the 256 KiB stream windows: tens of MiB at most,
  // nowhere near what an unbounded buffer would have taken (the loop's 512 MiB).
  assert.ok(written < 96 * 2 ** 20, `stalled only after ${written} bytes`);
  const paused = received;
  upstream!.resume();
  s.end();
  await new Promise<void>((resolve) => upstream!.once('end', () => resolve()));
  assert.equal(paused, 0);
  assert.equal(received, written, 'after resuming, every byte arrived');
});

test('the server restarting mid-stream: open tunnels end, new connections get a new HTTP/2 connection', async (t) => {
  const backend = await congratsServer(t);
  const serverConfig = (port: number) => ({ type: 'tunnel' as const, mode: 'server' as const, listen: `127.0.0.1:${port}`, connect: `127.0.0.1:${backend.port}`, h2c: true });
  const first = await startTunnel(t, 'in', serverConfig(0));
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${first.port}/` });

  // A tunnel in use: greeting received, not half-closed.
  const s = tcpConnect({ port: client.port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  const [greeting] = (await once(s, 'data')) as [Buffer];
  assert.equal(greeting.toString(), GREETING);
  // The tunnel's TCP connection is ended (FIN) or reset, not left hanging.
  const ended = new Promise<void>((resolve) => {
    s.once('end', () => resolve());
    s.once('close', () => resolve());
  });
  await first.handle.close();
  await ended;
  s.destroy();

  const second = await startTunnel(t, 'in2', serverConfig(first.port));
  assert.equal(await exchange(client.port, 'after restart\n'), `${GREETING}after restart\n`);
  assert.equal(client.handle.stats().sessions_total, 2);
  assert.equal(second.handle.stats().established_total, 1);
});

test('GOAWAY: the open tunnel finishes on the old connection, new ones use a new connection', async (t) => {
  // A front door that sends GOAWAY after each stream starts (as one draining for a deploy does).
  const front = createH2Server();
  let sessions = 0;
  front.on('session', () => sessions++);
  front.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.pipe(stream);
    stream.session!.goaway(0, stream.id);
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  t.after(() => front.close());
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${(front.address() as AddressInfo).port}/` });
  const s = tcpConnect({ port: client.port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  s.write('first ');
  await once(s, 'data'); // the stream is up, and GOAWAY has been sent behind it
  assert.equal(await exchange(client.port, 'second\n'), 'second\n');
  s.end('still open\n');
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  await once(s, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'still open\n');
  assert.equal(sessions, 2);
  assert.equal(client.handle.stats().sessions_total, 2);
});

test('a stream a GOAWAY refused (it raced the server closing an idle connection) is sent again, once, on a new connection', async (t) => {
  // A server whose first connection says GOAWAY at once, before any stream (last stream 0):
  // the client's first stream, already on the wire, was never processed (RFC 9113 §8.7).
  const front = createH2Server();
  let sessions = 0;
  front.on('session', (session) => {
    if (sessions++ === 0) session.goaway(0, 0);
  });
  front.on('stream', (stream) => {
    stream.respond({ ':status': 200 });
    stream.pipe(stream);
  });
  front.listen(0, '127.0.0.1');
  await once(front, 'listening');
  t.after(() => front.close());
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${(front.address() as AddressInfo).port}/` });
  assert.equal(await exchange(client.port, 'retried\n'), 'retried\n');
  assert.equal(sessions, 2);
  assert.equal(client.handle.stats().refused_total, 0);
});

test('no response in time: the TCP connection is closed, and the next tunnel uses a new HTTP/2 connection', async (t) => {
  // A front door that takes streams and never answers (a connection dead without a FIN looks the same).
  const silent = createH2Server();
  let sessions = 0;
  silent.on('session', () => sessions++);
  silent.on('stream', () => {});
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(() => silent.close());
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`, connectTimeout: '300ms' });
  assert.equal((await outcome(client.port)).data, '');
  assert.equal((await outcome(client.port)).data, '');
  assert.equal(sessions, 2);
  assert.equal(client.log.records().filter((r) => String(r.message).startsWith('tunnel: no response within 300 ms')).length, 2);
});

test('refused when unreachable: no server at the URL closes the TCP connection, logged', async (t) => {
  const gone = createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const port = (gone.address() as AddressInfo).port;
  gone.close();
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${port}/` });
  assert.equal((await outcome(client.port)).data, '');
  assert.ok(client.log.messages().some((m) => m.startsWith('tunnel')), client.log.text());
});

test('config: one clear issue per mistake', () => {
  const issues = (c: Record<string, unknown>) => tunnelType.schema.safeParse(c).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') ?? 'ok';
  const server = { type: 'tunnel', mode: 'server', listen: '0.0.0.0:8080', connect: '127.0.0.1:7777' };
  assert.match(issues(server), /tls: set tls: \{cert, key\}/);
  assert.match(issues({ ...server, h2c: true, tls: { cert: 'c', key: 'k' } }), /h2c: true is cleartext/);
  assert.match(issues({ ...server, h2c: true, path: 'tunnel' }), /path: must be an absolute path/);
  assert.equal(issues({ ...server, h2c: true }), 'ok');
  const client = { type: 'tunnel', mode: 'client', listen: '127.0.0.1:7777' };
  assert.match(issues({ ...client, url: 'http://svc.a.run.app/' }), /url .*plain http is allowed only to loopback/);
  assert.match(issues({ ...client, url: 'https://svc.a.run.app/', authority: 'a:1' }), /authority is for method: CONNECT only/);
  assert.match(issues({ ...client, url: 'https://svc.a.run.app/', method: 'GET' }), /method/);
  assert.match(issues({ ...client, url: 'https://svc.a.run.app/', token: { kind: 'password' } }), /kind must be one of/);
  assert.match(issues({ ...client, url: 'https://svc.a.run.app/', mode: 'both' }), /mode must be server or client/);
  assert.equal(issues({ ...client, url: 'https://svc.a.run.app/' }), 'ok');
  // Inner TLS checks the server's name unless told to check the chain alone (one CA for both sides).
  const innerTls = { cert: 'c', key: 'k', ca: 'ca' };
  assert.match(issues({ ...client, url: 'https://svc.a.run.app/', inner: { tls: innerTls } }), /inner\.tls\.serverName: required: .*could pose as the server/);
  assert.equal(issues({ ...client, url: 'https://svc.a.run.app/', inner: { tls: { ...innerTls, anyServerName: true } } }), 'ok');
  assert.match(issues({ ...client, url: 'https://svc.a.run.app/', inner: { tls: { ...innerTls, serverName: 'a', anyServerName: true } } }), /not both/);
  assert.match(issues({ ...server, h2c: true, inner: { tls: { ...innerTls, serverName: 'a' } } }), /serverName/);
  const parsed = tunnelType.schema.parse({ ...client, url: 'https://svc.a.run.app/', token: { kind: 'id-token', credentials: 'alice' }, inner: { tls: { ...innerTls, serverName: 'congrats.internal' } } });
  assert.deepEqual(tunnelType.secrets(parsed), ['c', 'k', 'ca']);
  assert.deepEqual(tunnelType.credentials(parsed), ['alice']);
  assert.equal(tunnelType.upstream(parsed), undefined);
  assert.deepEqual(tunnelType.upstream(tunnelType.schema.parse({ ...server, h2c: true })), { host: '127.0.0.1', port: 7777 });
});
