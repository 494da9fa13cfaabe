// The run stage facing what a program controls: what an http readiness check gets back (a body
// that never ends, headers trickled a byte at a time). Real bundle, real sockets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { startUnits, unit } from '../helpers/units.ts';

/** A server the test runs as the program's port would be; counts the connections open at once. */
async function serve(t: TestContext, server: Server): Promise<{ port: number; maxOpen: () => number }> {
  const open = new Set<Socket>();
  let max = 0;
  server.on('connection', (socket: Socket) => {
    open.add(socket);
    max = Math.max(max, open.size);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const socket of open) socket.destroy();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, maxOpen: () => max };
}

/** A unit whose http check never passes: the init gives up after 1s with 69. */
async function checkFails(t: TestContext, port: number): Promise<void> {
  const s = startUnits({ processes: { app: { command: unit('app'), ready: { http: `http://127.0.0.1:${port}/`, interval: '20ms', timeout: '1s' } } } });
  t.after(s.cleanup);
  const result = await s.proc;
  assert.equal(result.exitCode, 69, s.log.text);
  assert.match(s.log.find('did not pass within')!.message, /^processes\.app\.ready: http http:\/\/127\.0\.0\.1:\d+\/ did not pass within 1s/);
}

test('an http readiness check answered 503 with a body that never ends: each attempt closes its connection', async (t) => {
  const server = createHttpServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('still starting\n'), 10);
    res.on('close', () => clearInterval(timer));
  });
  const { port, maxOpen } = await serve(t, server);
  await checkFails(t, port);
  assert.ok(maxOpen() <= 2, `the check kept ${maxOpen()} connections open at once`);
});

test('an http readiness check whose headers trickle in a byte at a time: the attempt ends at its limit, the check at its timeout', async (t) => {
  const server = createServer((socket) => {
    socket.write('HTTP/1.1 200 OK\r\nX-Slow: ');
    const timer = setInterval(() => socket.write('a'), 50);
    socket.on('close', () => clearInterval(timer));
  });
  const { port } = await serve(t, server);
  await checkFails(t, port);
});
