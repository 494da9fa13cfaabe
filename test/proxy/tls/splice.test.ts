// Permissive mode's plaintext clients go through splice(2) in a thread of its own
// (src/proxy/splice.ts): half-close both ways, the idle timeout, the byte counts and the
// connection count, and every file descriptor closed at the end (this process's /proc/self/fd:
// the listener runs here, `workers` unset in startTls).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { until } from '../../helpers/lines.ts';
import { echoServer, filePki, listenLocal, readAll, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-splice-');
const openFds = () => readdirSync('/proc/self/fd').length;

async function plainClient(port: number): Promise<Socket> {
  const s = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(s, 'connect');
  return s;
}

describe('permissive plaintext in the kernel (splice)', () => {
  test('half-close: the answer sent after the client\'s FIN arrives, and the upstream\'s FIN first leaves the client able to send', async (t) => {
    // Answers once the client has finished (request/response over a half-closed connection).
    const atEof = await listenLocal(t, createServer({ allowHalfOpen: true }, (s) => {
      const got: Buffer[] = [];
      s.on('data', (d) => got.push(d)).on('end', () => s.end(`got ${Buffer.concat(got).length} bytes`));
    }));
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${atEof.port}` });
    const c = await plainClient(l.port);
    c.end(Buffer.alloc(300_000, 'q'));
    assert.equal((await readAll(c)).toString(), 'got 300000 bytes');

    // The other way: the upstream says hello and finishes its side; the client still talks.
    const greeter = await listenLocal(t, createServer({ allowHalfOpen: true }, (s) => {
      s.end('hello\n');
      const got: Buffer[] = [];
      s.on('data', (d) => got.push(d)).on('end', () => (seen.push(Buffer.concat(got).toString()), s.destroy()));
    }));
    const seen: string[] = [];
    const l2 = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${greeter.port}` });
    const c2 = await plainClient(l2.port);
    c2.write('x'); // plaintext is decided by the first byte
    const [greeting] = (await once(c2, 'data')) as [Buffer];
    assert.equal(greeting.toString(), 'hello\n');
    await once(c2, 'end');
    c2.end('after your FIN');
    await until(() => seen.length === 1, 'the upstream to get the bytes sent after its FIN');
    assert.equal(seen[0], 'xafter your FIN');
    await until(() => l2.handle.stats().connections_active === 0, 'the connection to close');
  });

  test('bytes and connections are counted, and every fd is closed at the end (clean, reset, and the listener closing)', async (t) => {
    const echo = await echoServer(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${echo.port}` });
    // Warm-up: the splice thread and its wake pipe stay for the next connections.
    const w = await plainClient(l.port);
    w.end('warm');
    await readAll(w);
    await until(() => l.handle.stats().connections_active === 0, 'the warm-up connection to close');
    const before = openFds();

    const payload = Buffer.alloc(1 << 20, 'b');
    const clients = await Promise.all(Array.from({ length: 8 }, () => plainClient(l.port)));
    const echoed = clients.map((c) => readAll(c));
    for (const c of clients) c.end(payload);
    for (const r of await Promise.all(echoed)) assert.equal(r.length, payload.length);
    await until(() => l.handle.stats().connections_active === 0, 'the connections to close');
    const s = l.handle.stats();
    assert.equal(s.bytes_from_client_total, 4 + 8 * payload.length);
    assert.equal(s.bytes_to_client_total, 4 + 8 * payload.length);
    assert.equal(s.plaintext_connections_total, 9);

    // A client that resets mid-stream ends its connection only.
    const reset = await plainClient(l.port);
    reset.write(Buffer.alloc(200_000, 'r'));
    await once(reset, 'data');
    reset.resetAndDestroy();
    await until(() => l.handle.stats().connections_active === 0, 'the reset connection to close');
    // The echo server here closes its side when it sees ours go.
    await until(() => openFds() === before, 'the fds of finished connections to be closed');

    // Open connections when the listener closes: it waits for them, and their fds go too.
    const open = await Promise.all([plainClient(l.port), plainClient(l.port)]);
    for (const c of open) c.write('x');
    await Promise.all(open.map((c) => once(c, 'data')));
    const ended = open.map((c) => once(c, 'end'));
    await l.handle.close();
    await Promise.all(ended);
    for (const c of open) c.destroy();
    // Less one: the listening socket is closed too.
    await until(() => openFds() === before - 1, 'the spliced fds to be closed after the listener closed');
  });

  test('the idle timeout ends a quiet spliced connection, and is counted', async (t) => {
    const echo = await echoServer(t);
    const l = await startTls(t, shared.pki, { mode: 'permissive', connect: `127.0.0.1:${echo.port}`, idleTimeout: '300ms' });
    const c = await plainClient(l.port);
    c.write('ping');
    await once(c, 'data');
    // Nothing more either way: the listener ends the connection (the client sees its FIN).
    await once(c, 'end');
    c.destroy();
    await until(() => l.handle.stats().connections_active === 0, 'the idle connection to be counted closed');
    assert.equal(l.handle.stats().idle_timeouts_total, 1);
  });
});
