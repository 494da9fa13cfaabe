// Connection handling common to both modes: half-close, backpressure, backend down, handshake
// and idle timeouts, the connection limit, and a prompt close() (issue 5, "Server mode").
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { execa } from 'execa';
import { Lines, until } from '../../helpers/lines.ts';
import { needs } from '../../helpers/tools.ts';
import {
  clientOptions, closedWithin, echoServer, freePort, INSTALL, listenLocal, memoryLog, pskConnect, readAll, replyAtEof, sClient,
  serverOptions, startProxy, startStunnel,
} from './peers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('half-close: a client that shuts down its write side still gets the answer', () => {
  test('Node TLS client → server mode → backend that answers at EOF', async (t) => {
    const backend = await replyAtEof(t);
    const proxy = await startProxy(t, serverOptions(backend.port));
    const c = await pskConnect(proxy.address.port, { allowHalfOpen: true });
    c.end('hello, half-closed');
    assert.equal((await readAll(c)).toString(), 'got 18 bytes\n');
  });

  test('plain client → stunnel (PSK client) → server mode → backend', async (t) => {
    const backend = await replyAtEof(t);
    const proxy = await startProxy(t, serverOptions(backend.port));
    const stunnel = await startStunnel(t, { client: true, connect: proxy.address.port, extra: { ciphersuites: 'TLS_AES_128_GCM_SHA256' } });
    if (!stunnel) return;
    const c = tcpConnect({ host: '127.0.0.1', port: stunnel.port, allowHalfOpen: true });
    c.end('through stunnel');
    assert.equal((await readAll(c)).toString(), 'got 15 bytes\n');
  });

  test('plain client → client mode → server mode → backend', async (t) => {
    const backend = await replyAtEof(t);
    const server = await startProxy(t, serverOptions(backend.port));
    const client = await startProxy(t, clientOptions(server.address.port));
    const c = tcpConnect({ host: '127.0.0.1', port: client.address.port, allowHalfOpen: true });
    c.end('both modes');
    assert.equal((await readAll(c)).toString(), 'got 10 bytes\n');
    await until(() => server.stats().active === 0 && client.stats().active === 0, 'both proxies to finish the connection');
    assert.equal(server.stats().established, 1);
  });

  test('a client that sends its FIN before the TLS session is up (client mode) still gets its answer', async (t) => {
    // The FIN arrives while the handshake with the remote is still going: the local socket has
    // emitted 'end' before piping starts, and that end must still be passed on.
    const backend = await replyAtEof(t);
    const server = await startProxy(t, serverOptions(backend.port));
    const client = await startProxy(t, clientOptions(server.address.port));
    const c = tcpConnect({ host: '127.0.0.1', port: client.address.port, allowHalfOpen: true });
    c.end();
    assert.equal((await readAll(c)).toString(), 'got 0 bytes\n');
    await until(() => server.stats().active === 0 && client.stats().active === 0, 'both proxies to finish the connection');
  });

  test('the backend closing first ends the client side, which can still send', async (t) => {
    // A backend that speaks first, ends, and still reads: the reverse direction of half-close.
    let received = '';
    const gotAll = new Promise<void>((resolve) => {
      const server = createServer({ allowHalfOpen: true }, (s) => {
        s.on('error', () => {}); // the readiness probe connects and goes at once
        s.end('banner and bye\n');
        s.on('data', (d: Buffer) => (received += d));
        s.on('end', resolve);
      });
      void listenLocal(t, server).then(({ port }) => startProxy(t, serverOptions(port))).then(async (proxy) => {
        const c = await pskConnect(proxy.address.port, { allowHalfOpen: true });
        assert.equal((await readAll(c)).toString(), 'banner and bye\n');
        c.end('late words');
      });
    });
    await gotAll;
    assert.equal(received, 'late words');
  });
});

describe('bulk data', () => {
  test('32 MiB each way through client mode → server mode → echo arrive intact', async (t) => {
    const echo = await echoServer(t);
    const server = await startProxy(t, serverOptions(echo.port));
    const client = await startProxy(t, clientOptions(server.address.port));
    const data = randomBytes(32 << 20);
    const c = tcpConnect({ host: '127.0.0.1', port: client.address.port, allowHalfOpen: true });
    const reply = readAll(c);
    c.end(data);
    const back = await reply;
    assert.equal(back.length, data.length);
    assert.equal(sha(back), sha(data));
    await until(() => server.stats().active === 0, 'the server side to close');
    assert.equal(server.stats().bytesFromClient, data.length);
    assert.equal(server.stats().bytesToClient, data.length);
    assert.equal(client.stats().bytesFromClient, data.length);
  });

  test('backpressure: a backend that does not read stalls the client instead of filling the proxy', async (t) => {
    const held: Socket[] = [];
    const chunks: Buffer[] = [];
    const server = createServer((s) => {
      held.push(s);
      s.pause();
    });
    const backend = await listenLocal(t, server);
    const proxy = await startProxy(t, serverOptions(backend.port, { ready: false }));
    const c = await pskConnect(proxy.address.port);
    const data = randomBytes(64 << 20);
    c.write(data);
    c.end();
    await until(() => held.length === 1 && proxy.stats().bytesFromClient > 0, 'data to start flowing');
    // Wait until the flow stops (kernel buffers and stream buffers full), then check how much the
    // proxy took: a few MiB of buffers, not the 64 MiB the client queued.
    let last = -1;
    await until(() => {
      const now = proxy.stats().bytesFromClient;
      const still = now === last;
      last = now;
      return still;
    }, 'the flow to stall');
    assert.ok(proxy.stats().bytesFromClient < 24 << 20, `the proxy read ${proxy.stats().bytesFromClient} bytes ahead of the backend`);
    // Once the backend reads, everything arrives.
    const s = held[0]!;
    s.on('data', (d: Buffer) => chunks.push(d));
    s.resume();
    await once(s, 'end');
    assert.equal(sha(Buffer.concat(chunks)), sha(data));
  });
});

describe('failures close the client promptly', () => {
  test('server mode, backend down: openssl s_client is closed at once and it is logged', async (t) => {
    if (!needs(t, 'openssl', INSTALL.openssl)) return;
    const { log, lines } = memoryLog('warn');
    const dead = await freePort();
    const proxy = await startProxy(t, serverOptions(dead, { log, ready: false }));
    const c = sClient(t, proxy.address.port);
    const t0 = performance.now();
    await c.exit; // the connection closed without any input from the test
    assert.ok(performance.now() - t0 < 5000);
    assert.equal(proxy.stats().upstreamFailures, 1);
    assert.equal(proxy.stats().active, 0);
    const rec = JSON.parse(lines.find((l) => l.includes('psk upstream unreachable'))!) as Record<string, unknown>;
    assert.equal(rec.severity, 'WARNING');
    assert.equal(rec.reason, 'ECONNREFUSED');
    assert.equal(rec.upstream, `127.0.0.1:${dead}`);
    assert.equal(rec.identity, 'Client1');
  });

  test('server mode, backend down: a Node TLS client sees a clean end', async (t) => {
    const proxy = await startProxy(t, serverOptions(await freePort(), { ready: false }));
    const c = await pskConnect(proxy.address.port);
    assert.equal((await readAll(c)).length, 0);
  });

  test('client mode, remote down: the local connection is closed', async (t) => {
    const { log, lines } = memoryLog('warn');
    const proxy = await startProxy(t, clientOptions(await freePort(), { log }));
    const c = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
    assert.equal((await readAll(c)).length, 0);
    assert.equal(proxy.stats().upstreamFailures, 1);
    assert.ok(lines.some((l) => l.includes('psk remote peer unreachable')));
  });

  test('client mode, wrong key: the local connection is closed, the handshake failure counted', async (t) => {
    const echo = await echoServer(t);
    const server = await startProxy(t, serverOptions(echo.port));
    const client = await startProxy(t, clientOptions(server.address.port, { key: Buffer.alloc(32, 3).fill(4, 0, 1) }));
    const c = tcpConnect({ host: '127.0.0.1', port: client.address.port });
    c.write('never delivered');
    assert.equal((await readAll(c)).length, 0);
    assert.equal(client.stats().handshakeFailures, 1);
    assert.equal(server.stats().handshakeFailures, 1);
    assert.equal(echo.sockets.size, 0);
  });
});

describe('timeouts', () => {
  test('handshake timeout: a TCP client that never speaks TLS is dropped (server mode)', async (t) => {
    const echo = await echoServer(t);
    const { log, lines } = memoryLog('warn');
    const proxy = await startProxy(t, serverOptions(echo.port, { log, timeouts: { handshakeMs: 200 } }));
    const c = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
    c.on('error', () => {});
    await closedWithin(c);
    assert.equal(proxy.stats().handshakeFailures, 1);
    assert.ok(lines.some((l) => l.includes('ERR_TLS_HANDSHAKE_TIMEOUT')), lines.join(''));
  });

  test('handshake timeout: a remote that accepts TCP but never answers (client mode)', async (t) => {
    const silent = await listenLocal(t, createServer(() => {}));
    const proxy = await startProxy(t, clientOptions(silent.port, { timeouts: { handshakeMs: 200 } }));
    const c = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
    await closedWithin(c);
    assert.equal(proxy.stats().handshakeFailures, 1);
  });

  test('server mode, backend connect timeout (connectMs)', async (t) => {
    // A listener that never accepts, with backlog 0: once one connection waits in its queue, the
    // kernel drops further SYNs, so the proxy's connect hangs. (Node accepts eagerly; python does not.)
    if (!needs(t, 'python3', 'apt-get install python3')) return;
    const py = execa('python3', ['-c', 'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()'],
      { stdin: 'pipe', reject: false });
    t.after(async () => { py.kill(); await py; });
    const port = Number(await new Lines(py.stdout!).next());
    const filler = tcpConnect({ host: '127.0.0.1', port });
    filler.on('error', () => {});
    t.after(() => filler.destroy());
    await once(filler, 'connect');
    const proxy = await startProxy(t, serverOptions(port, { ready: false, timeouts: { connectMs: 300 } }));
    const c = await pskConnect(proxy.address.port);
    assert.equal((await readAll(c)).length, 0);
    assert.equal(proxy.stats().upstreamFailures, 1);
  });

  test('idle timeout closes both sides of a quiet connection', async (t) => {
    const echo = await echoServer(t);
    const proxy = await startProxy(t, serverOptions(echo.port, { timeouts: { idleMs: 300 } }));
    const c = await pskConnect(proxy.address.port);
    c.write('ping');
    await once(c, 'data');
    await closedWithin(c);
    await until(() => proxy.stats().idleTimeouts === 1, 'the idle timeout to be counted');
    await until(() => echo.sockets.size === 0, 'the backend connection to close');
  });

  test('idle timeout also ends a half-closed connection whose backend keeps its side open and quiet', async (t) => {
    // The idle check is one timer per connection (pipe.ts): it must keep watching after a FIN
    // has gone through, until both sides have closed.
    const held = new Set<Socket>();
    const server = createServer({ allowHalfOpen: true }, (s) => {
      held.add(s);
      s.on('close', () => held.delete(s));
      s.on('error', () => {});
      s.resume(); // reads the FIN, never answers nor ends
    });
    const backend = await listenLocal(t, server);
    const proxy = await startProxy(t, serverOptions(backend.port, { timeouts: { idleMs: 300 } }));
    const c = await pskConnect(proxy.address.port, { allowHalfOpen: true });
    c.on('error', () => {});
    c.end('bye');
    await until(() => held.size === 1, 'the connection to reach the backend');
    await closedWithin(c);
    await until(() => proxy.stats().idleTimeouts === 1, 'the idle timeout to be counted');
    // (The backend saw our FIN already: its socket stays half-open until it writes, as in TCP.)
  });
});

describe('connection limit', () => {
  test('beyond maxConnections new connections are refused at once, and accepted again below it', async (t) => {
    const echo = await echoServer(t);
    const { log, lines } = memoryLog('info');
    const proxy = await startProxy(t, serverOptions(echo.port, { log, maxConnections: 2 }));
    const a = await pskConnect(proxy.address.port);
    const b = await pskConnect(proxy.address.port);
    for (let i = 0; i < 3; i++) {
      const refused = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
      refused.on('error', () => {});
      await closedWithin(refused);
    }
    assert.equal(proxy.stats().rejected, 3);
    assert.equal(lines.filter((l) => l.includes('connection limit reached')).length, 1, 'logged once, not per refusal');
    a.destroy();
    await until(() => proxy.stats().active === 1, 'the first connection to close');
    const c = await pskConnect(proxy.address.port);
    c.write('again');
    assert.equal(String((await once(c, 'data'))[0]), 'again');
    assert.ok(lines.some((l) => l.includes('below its connection limit again')));
    b.destroy();
    c.destroy();
  });
});

describe('close()', () => {
  test('finishes promptly with piped, handshaking and connecting connections open', async (t) => {
    const echo = await echoServer(t);
    const proxy = await startProxy(t, serverOptions(echo.port));
    const piped = await Promise.all([1, 2, 3].map(() => pskConnect(proxy.address.port)));
    const raw = tcpConnect({ host: '127.0.0.1', port: proxy.address.port }); // stuck before the handshake
    raw.on('error', () => {});
    await once(raw, 'connect');
    await until(() => proxy.stats().active === 4 && echo.sockets.size === 3, 'four connections, three piped');
    const t0 = performance.now();
    await proxy.close();
    assert.ok(performance.now() - t0 < 2000, 'close() must not wait for clients (the idle timeout is 12 h)');
    await Promise.all([...piped, raw].map(closedWithin));
    await until(() => echo.sockets.size === 0, 'backend connections to close');
    assert.equal(proxy.stats().active, 0);
    // Nothing listens any more.
    const late = tcpConnect({ host: '127.0.0.1', port: proxy.address.port });
    const [err] = (await once(late, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
    await proxy.close(); // idempotent
  });

  test('client mode too', async (t) => {
    const echo = await echoServer(t);
    const server = await startProxy(t, serverOptions(echo.port));
    const client = await startProxy(t, clientOptions(server.address.port));
    const c = tcpConnect({ host: '127.0.0.1', port: client.address.port });
    c.write('x');
    await once(c, 'data');
    await client.close();
    await closedWithin(c);
    await until(() => server.stats().active === 0, 'the server side to see the close');
  });
});
