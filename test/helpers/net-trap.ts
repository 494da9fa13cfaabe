// A network trap for one boot: a loopback TCP port and a unix socket that record each
// connection and never answer. Point `endpoints.sts/iamcredentials/secretmanager` at `url` and
// `endpoints.teeserver` at `socketPath`: the first connection proves the boot got past every
// local check and made its first network call.
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export interface NetTrap {
  /** `http://127.0.0.1:PORT`: plain http, which tee-init allows on loopback only. */
  readonly url: string;
  readonly socketPath: string;
  /** What connected so far ('tcp' or 'unix'), in order. */
  readonly connections: ('tcp' | 'unix')[];
  /** Resolves at the first connection (already made or future). */
  readonly touched: Promise<'tcp' | 'unix'>;
  close(): Promise<void>;
}

export async function startNetTrap(socketPath: string): Promise<NetTrap> {
  const connections: ('tcp' | 'unix')[] = [];
  const sockets = new Set<Socket>();
  let first!: (kind: 'tcp' | 'unix') => void;
  const touched = new Promise<'tcp' | 'unix'>((resolve) => (first = resolve));
  const serve = (kind: 'tcp' | 'unix'): Server =>
    createServer((s) => {
      connections.push(kind);
      sockets.add(s);
      // Held open, never answered: the boot waits in its request until the test stops it.
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
      first(kind);
    });
  const tcp = serve('tcp');
  const unix = serve('unix');
  tcp.listen(0, '127.0.0.1');
  unix.listen(socketPath);
  await Promise.all([once(tcp, 'listening'), once(unix, 'listening')]);
  const { port } = tcp.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    socketPath,
    connections,
    touched,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => tcp.close(r)), new Promise((r) => unix.close(r))]);
      rmSync(socketPath, { force: true });
    },
  };
}
