// A free port, shared by tests, benchmarks, the demo and the examples (readiness: src/proxy/ready.ts).
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';

/** A loopback port that was free a moment ago, for programs that cannot bind port 0 and report it. */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as AddressInfo;
  s.close();
  await once(s, 'close');
  return port;
}

/**
 * Sends `start`, then one more header line every 200 ms, never the blank line that ends the
 * head; resolves with what the server answered once it closes the connection.
 */
export function trickle(port: number, start: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    let n = 0;
    const timer = setInterval(() => socket.writable && socket.write(`X-Line-${n++}: ${n}\r\n`), 200);
    socket.on('connect', () => socket.write(start));
    socket.on('data', (d) => (answer += d.toString('latin1')));
    // A reset after the answer is the server cutting us: 'close' follows and resolves.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve(answer);
    });
  });
}
