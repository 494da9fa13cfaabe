// The tunnel's failure boundary (issue 18): what a peer without credentials, a peer that goes
// silent, or a hostile server can make either end hold or log, and that a fault in handling one
// connection ends that connection only. Real peers: raw TCP sockets for the attackers, Python's
// h2 (h2peer.py) for the hostile server and the frozen client, tee-init's own ends otherwise.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { type AddressInfo, createServer, connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { createLog } from '../../src/lib/log.ts';
import { Lines } from '../helpers/lines.ts';
import { memoryLog } from '../helpers/log.ts';
import { issue } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';
import { congratsServer, exchange, outcome, startTunnel, tempDir, twoPkis } from './peers.ts';

const PY = '/usr/bin/python3';
const PEER = join(import.meta.dirname, 'h2peer.py');
const GREETING = 'Congrats! You have connected through the tunnel.\n';
// The client connection preface and an empty SETTINGS frame (RFC 9113 §3.4): all a lock-out needs.
const PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
// ...and a request whose header block never ends: HEADERS without END_HEADERS (:method POST,
// :scheme http, :path / from HPACK's static table), no CONTINUATION ever (slow headers).
const HALF_HEADERS = Buffer.concat([PREFACE, Buffer.from([0, 0, 3, 1, 0, 0, 0, 0, 1, 0x83, 0x86, 0x84])]);

async function attacker(port: number, bytes?: Buffer): Promise<Socket> {
  const s = tcpConnect({ port, host: '127.0.0.1' });
  s.on('error', () => {});
  s.on('data', () => {}); // reads what the server sends (its SETTINGS), answers nothing
  await once(s, 'connect');
  if (bytes) s.write(bytes);
  return s;
}

test('lock-out: connections that open no authenticated tunnel (silent, preface only, headers never ended) are closed after handshakeTimeout, and callers get in', { timeout: 120_000 }, async (t) => {
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, maxConnections: 20, handshakeTimeout: '1s',
  });
  // Silent, the HTTP/2 preface and nothing more, a header block that never ends: every slot taken.
  const held = await Promise.all(Array.from({ length: 20 }, (_, i) => attacker(server.port, [undefined, PREFACE, HALF_HEADERS][i % 3])));
  await Promise.all(held.map((s) => (s.closed ? undefined : once(s, 'close'))));
  assert.equal(server.handle.stats().sessions_timed_out_total, 20);
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  assert.equal(await exchange(client.port, 'in\n'), `${GREETING}in\n`);
  // The timeouts are logged through the limiter, not one line per attacker beyond its burst.
  assert.ok(server.log.records().filter((r) => String(r.message).includes('no authenticated tunnel')).length <= 20);
});

test('SETTINGS and PING floods from a client that reads nothing end its connection, not the listener', { timeout: 120_000 }, async (t) => {
  const backend = await congratsServer(t);
  const log = watchedLog();
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true }, undefined, undefined, log);
  // Each frame asks for an answer (SETTINGS ACK, PING ACK) the client never reads: nghttp2's
  // outbound-queue limit ends the connection instead of buffering answers without bound.
  const settings = Buffer.alloc(9 * 100_000);
  for (let i = 0; i < 100_000; i++) settings.set([0, 0, 0, 4, 0, 0, 0, 0, 0], i * 9);
  const ping = Buffer.alloc(17 * 100_000);
  for (let i = 0; i < 100_000; i++) ping.set([0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8], i * 17);
  for (const flood of [settings, ping]) {
    const failed = log.next(/tunnel HTTP\/2 connection failed/);
    const s = tcpConnect({ port: server.port, host: '127.0.0.1' });
    s.on('error', () => {});
    t.after(() => s.destroy());
    await once(s, 'connect');
    s.pause(); // reads nothing
    s.write(PREFACE);
    s.write(flood);
    await failed;
  }
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  assert.equal(await exchange(client.port, 'fine\n'), `${GREETING}fine\n`);
});

/** A real logger in memory whose next(re) resolves when a record matching `re` is written. */
function watchedLog() {
  const m = memoryLog('trace');
  const waiters = new Set<{ re: RegExp; resolve: () => void }>();
  const log = createLog({ level: 'trace', sink: { write: (l: string) => {
    m.lines.push(l);
    for (const w of waiters) if (w.re.test(l)) (waiters.delete(w), w.resolve());
  } } });
  const next = (re: RegExp) => new Promise<void>((resolve) => waiters.add({ re, resolve }));
  return { ...m, log, next };
}

test('a client frozen mid-transfer loses its connection, TCP socket included (Node would keep it to flush), and its slot is free again', { timeout: 120_000 }, async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  // The program sends 32 MiB to its first caller: megabytes stay queued toward the frozen client.
  let first = true;
  const program = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    if (first) {
      first = false;
      s.write(Buffer.alloc(32 << 20, 1));
      return;
    }
    s.write(GREETING);
    s.pipe(s);
  });
  program.listen(0, '127.0.0.1');
  await once(program, 'listening');
  t.after(() => program.close());
  const log = watchedLog();
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${(program.address() as AddressInfo).port}`, h2c: true,
    keepalive: '1s', handshakeTimeout: '1s', maxConnections: 1,
  }, undefined, undefined, log);
  const peer = execa(PY, [PEER, 'client', String(server.port), 'POST', '/', 'hi\n', 'hold'], { reject: false, stdout: 'pipe', stderr: 'inherit' });
  t.after(async () => {
    peer.kill('SIGKILL');
    await peer;
  });
  await new Lines(peer.stdout).until(/^holding$/, 30_000);
  const gone = log.next(/outlived its HTTP\/2 connection/);
  peer.kill('SIGSTOP');
  await gone;
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  assert.equal(await exchange(client.port, 'next\n'), `${GREETING}next\n`);
  assert.equal(server.handle.stats().keepalive_failures_total, 1);
});

test('lock-out over TLS: a silent TCP connection to an HTTP/2-over-TLS server is closed after handshakeTimeout', { timeout: 120_000 }, async (t) => {
  const { secrets } = twoPkis(tempDir(t, 'tee-init-tunnel-'));
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, tls: { cert: 'h2_cert', key: 'h2_key' }, handshakeTimeout: '1s',
  }, secrets);
  const silent = await attacker(server.port);
  await once(silent, 'close');
  assert.equal(server.handle.stats().handshake_failures_total, 1);
});

test('idle HTTP/2 connection: closed (GOAWAY) idleTimeout after its last tunnel ended', { timeout: 120_000 }, async (t) => {
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, idleTimeout: '1s',
  });
  const session = h2connect(`http://127.0.0.1:${server.port}`);
  session.on('error', () => {});
  t.after(() => session.destroy());
  const stream = session.request({ ':method': 'POST', ':path': '/' });
  stream.end('one\n');
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await once(stream, 'end');
  assert.equal(Buffer.concat(chunks).toString(), `${GREETING}one\n`);
  const [code] = (await once(session, 'goaway')) as [number];
  assert.equal(code, 0, 'NO_ERROR: a graceful close');
  if (!session.closed) await once(session, 'close');
});

test('keepalive: a client that stops answering PING loses its HTTP/2 connection, and the program its TCP connection', { timeout: 120_000 }, async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  let upstream: Socket | undefined;
  const backend = await congratsServer(t);
  backend.server.on('connection', (s: Socket) => (upstream = s));
  const server = await startTunnel(t, 'in', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, keepalive: '1s',
  });
  const peer = execa(PY, [PEER, 'client', String(server.port), 'POST', '/', 'hi\n', 'hold'], { reject: false, stdout: 'pipe', stderr: 'inherit' });
  t.after(async () => {
    peer.kill('SIGKILL');
    await peer;
  });
  await new Lines(peer.stdout).until(/^holding$/, 30_000);
  assert.ok(upstream, 'the tunnel reached the program');
  peer.kill('SIGSTOP'); // the kernel still ACKs its TCP; only HTTP/2 PING notices
  if (!upstream.closed) await once(upstream, 'close');
  assert.equal(server.handle.stats().sessions_active, 0);
  assert.ok(server.log.messages().some((m) => m.includes('did not answer PING')), server.log.text());
});

test('keepalive: a server that stops answering PING loses the client\'s HTTP/2 connection, and the program its tunnel', { timeout: 120_000 }, async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const proc = execa(PY, [PEER, 'server'], { reject: false, stdout: 'pipe', stderr: 'inherit' });
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  const port = Number((await new Lines(proc.stdout).until(/^listening (\d+)$/, 10_000))[1]);
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${port}/`, keepalive: '1s' });
  const s = tcpConnect({ port: client.port, host: '127.0.0.1' });
  s.on('error', () => {});
  await once(s, 'data'); // "hello from h2": the tunnel is up
  proc.kill('SIGSTOP');
  await new Promise((resolve) => s.once('close', resolve));
  assert.equal(client.handle.stats().keepalive_failures_total, 1);
  assert.ok(client.log.messages().some((m) => m.includes('the server did not answer PING')), client.log.text());
});

test('a server frozen mid-transfer: the client ends its HTTP/2 connection, TCP socket included (Node would keep it to flush)', { timeout: 120_000 }, async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const proc = execa(PY, [PEER, 'server', 'big'], { reject: false, stdout: 'pipe', stderr: 'inherit' });
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  const port = Number((await new Lines(proc.stdout).until(/^listening (\d+)$/, 10_000))[1]);
  const log = watchedLog();
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${port}/`, keepalive: '1s', connectTimeout: '1s' }, undefined, undefined, log);
  const s = tcpConnect({ port: client.port, host: '127.0.0.1' });
  s.on('error', () => {});
  t.after(() => s.destroy());
  await once(s, 'data'); // "hello from h2": the tunnel is up
  s.resume();
  proc.kill('SIGSTOP');
  // The program sends on: megabytes queue toward the frozen server.
  const gone = log.next(/outlived its HTTP\/2 connection/);
  const chunk = Buffer.alloc(1 << 20, 2);
  for (let i = 0; i < 32 && !s.destroyed; i++) {
    if (!s.write(chunk)) {
      await new Promise((resolve) => {
        s.once('drain', resolve);
        s.once('close', resolve); // the tunnel ends when the keepalive gives up
      });
    }
  }
  await gone;
  assert.equal(client.handle.stats().keepalive_failures_total, 1);
});

test('a hostile server sending 20,000 GOAWAY frames cannot flood the client\'s log', { timeout: 120_000 }, async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const proc = execa(PY, [PEER, 'goaway-flood', '20000'], { reject: false, stdout: 'pipe', stderr: 'inherit' });
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  const lines = new Lines(proc.stdout);
  const port = Number((await lines.until(/^listening (\d+)$/, 10_000))[1]);
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${port}/` });
  const s = tcpConnect({ port: client.port, host: '127.0.0.1' });
  s.on('error', () => {});
  t.after(() => s.destroy());
  // The marker comes after the flood on the same connection: every GOAWAY has been read.
  let got = '';
  for await (const c of s) if ((got += String(c)).includes('after the flood\n')) break;
  assert.equal(got, 'hello from h2\nafter the flood\n');
  const goaways = client.log.records().filter((r) => /GOAWAY/.test(String(r.message)));
  assert.ok(goaways.length >= 1 && goaways.length <= 21, `${goaways.length} GOAWAY lines`);
});

test('inner TLS: a certificate from the same CA without the server\'s name cannot pose as the server', async (t) => {
  const dir = tempDir(t, 'tee-init-tunnel-');
  const { pki, secrets } = twoPkis(dir);
  // Another client's certificate from the one CA, no extendedKeyUsage (as many small PKIs issue them).
  const mallory = issue(`${dir}/pki`, pki.ca, 'mallory', 'mallory', ['basicConstraints=critical,CA:FALSE', 'subjectAltName=DNS:mallory.internal']);
  secrets.set('mallory_cert', readFileSync(mallory.cert));
  secrets.set('mallory_key', readFileSync(mallory.key));
  const backend = await congratsServer(t);
  const impostor = await startTunnel(t, 'impostor', {
    type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true,
    inner: { tls: { cert: 'mallory_cert', key: 'mallory_key', ca: 'ca' } },
  }, secrets);
  const url = `http://127.0.0.1:${impostor.port}/`;
  const client = await startTunnel(t, 'out', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url, inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', serverName: 'localhost' } },
  }, secrets);
  assert.equal((await outcome(client.port)).data, '');
  assert.equal(backend.accepted, 0);
  assert.equal(client.handle.stats().handshake_failures_total, 1);
  assert.match(String(client.log.records().find((r) => r.message === 'tunnel inner TLS handshake failed; closing the connection')?.reason), /ERR_TLS_CERT_ALTNAME_INVALID/);
  // The explicit opt-out checks the chain alone: what a missing serverName used to do.
  const chainOnly = await startTunnel(t, 'chain-only', {
    type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url, inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', anyServerName: true } },
  }, secrets);
  assert.equal(await exchange(chainOnly.port, 'x\n'), `${GREETING}x\n`);
});

/** A real logger that throws while writing records whose message is `poison` (a fault in a handler). */
function faultyLog(poison: string) {
  const m = memoryLog('trace');
  const log = createLog({ level: 'trace', sink: { write: (l: string) => {
    if (l.includes(`"message":"${poison}"`)) throw new Error('injected fault');
    m.lines.push(l);
  } } });
  return { ...m, log };
}

test('fault boundary: a throw while handling one tunnel ends that tunnel only; both ends keep serving and count it', async (t) => {
  const backend = await congratsServer(t);
  // The server faults in its 'tunnel open' handler, the client in its own: each on every tunnel.
  const serverLog = faultyLog('tunnel open');
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true }, undefined, undefined, serverLog);
  const good = await startTunnel(t, 'good', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  assert.equal((await outcome(good.port)).data, '', 'the faulting tunnel is ended');
  assert.equal((await outcome(good.port)).data, '', 'and the next one too, by the same fault: the listener is still there');
  assert.equal(server.handle.stats().connection_faults_total, 2);
  assert.ok(serverLog.messages().includes('tunnel: a connection was ended by a fault in its handling (the listener keeps serving)'), serverLog.text());

  const clientLog = faultyLog('tunnel open');
  const healthy = await startTunnel(t, 'in2', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true });
  const faulty = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${healthy.port}/` }, undefined, undefined, clientLog);
  assert.equal((await outcome(faulty.port)).data, '');
  assert.equal((await outcome(faulty.port)).data, '');
  assert.equal(faulty.handle.stats().connection_faults_total, 2);
  // The server that served the faulting client's tunnels is unharmed.
  const other = await startTunnel(t, 'other', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${healthy.port}/` });
  assert.equal(await exchange(other.port, 'still\n'), `${GREETING}still\n`);
});

test('peer values in log fields are encoded: a :path with control bytes is logged escaped', async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, path: '/t' });
  // U+009B is CSI for a terminal reading UTF-8: "\u009b2J" would clear a serial console.
  const r = await execa(PY, [PEER, 'client', String(server.port), 'POST', '/x\u009b2J\u202e', 'hi'], { reject: false, timeout: 30_000 });
  assert.match(r.stdout, /^status 404/);
  const line = server.log.records().find((l) => l.message === 'tunnel: refused a request that is not a tunnel here');
  assert.ok(line, server.log.text());
  assert.match(String(line.path), /^\/x(\\x[0-9a-f]{2})+2J(\\x[0-9a-f]{2})+$/);
  assert.doesNotMatch(server.log.text(), /[\u0080-\u009f\u202e]/);
});

test('maxTunnels: authenticated tunnels beyond the limit are refused (REFUSED_STREAM), counted, and the limit frees as tunnels end', async (t) => {
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true, maxTunnels: 1 });
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  const first = tcpConnect({ port: client.port, host: '127.0.0.1', allowHalfOpen: true });
  first.on('error', () => {});
  await once(first, 'data');
  assert.equal((await outcome(client.port)).data, '');
  // REFUSED_STREAM says "not processed": the client sends it once more, and is refused again.
  assert.equal(server.handle.stats().rejected_total, 2);
  assert.deepEqual(client.log.records().filter((r) => r.rstCode !== undefined).map((r) => r.rstCode), [7]);
  assert.equal(backend.accepted, 1, 'the refused tunnel never reached the program');
  const closed = once(first, 'close');
  first.destroy();
  await closed;
  // The server learns of the end through the stream's reset: retry until it has (no timing assumed).
  for (;;) {
    const s = tcpConnect({ port: client.port, host: '127.0.0.1', allowHalfOpen: true });
    s.on('error', () => {});
    s.end('again\n');
    let got = '';
    s.on('data', (c: Buffer) => (got += String(c)));
    await new Promise((resolve) => s.once('close', resolve)); // a refusal may come as a reset
    if (got === '') continue;
    assert.equal(got, `${GREETING}again\n`);
    break;
  }
});

test('rapid reset (CVE-2023-44487): a client resetting thousands of streams loses its connection; the listener serves others', { timeout: 120_000 }, async (t) => {
  if (!needs(t, PY, 'apt-get install python3-h2')) return;
  const backend = await congratsServer(t);
  const server = await startTunnel(t, 'in', { type: 'tunnel', mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${backend.port}`, h2c: true });
  const r = await execa(PY, [PEER, 'rst-flood', String(server.port), '20000'], { reject: false, timeout: 60_000 });
  assert.equal(r.exitCode, 0, r.stderr);
  // nghttp2 stops the flood (streamResetBurst/Rate): GOAWAY, the connection ends.
  assert.match(r.stdout, /^goaway \d+$/m);
  assert.match(r.stdout, /^closed$/m);
  // A stream reset in the same read as its HEADERS never reaches the program (hundreds did);
  // the few allowed are pairs a read boundary split.
  const flooded = backend.accepted;
  t.diagnostic(`${r.stdout.replace(/\n/g, '; ')}; program connections: ${flooded}`);
  assert.ok(flooded < 20, `${flooded} program connections from reset streams`);
  const client = await startTunnel(t, 'out', { type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url: `http://127.0.0.1:${server.port}/` });
  assert.equal(await exchange(client.port, 'after\n'), `${GREETING}after\n`);
});
