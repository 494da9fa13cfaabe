// Small HTTP plumbing shared by the fakes: bodies, replies, delays that a close() cancels, and
// a close() that does not wait for keep-alive or hung sockets.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const MAX_BODY = 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export function reply(res: ServerResponse, status: number, body: string | Buffer, contentType: string): void {
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function replyJson(res: ServerResponse, status: number, body: unknown): void {
  reply(res, status, JSON.stringify(body), 'application/json; charset=UTF-8');
}

/** Listens on 127.0.0.1 with a free port (or the given one). */
export async function listenLoopback(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => (server.off('error', reject), resolve()));
  });
  return (server.address() as AddressInfo).port;
}

/** Timers a fake is waiting on, so that close() can cancel latency in flight. */
export class Delays {
  #timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  #closed = false;

  /** Resolves to false if the fake closed meanwhile (the request is then abandoned). */
  wait(ms: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => (this.#timers.delete(entry), resolve(!this.#closed)), ms),
        resolve: () => resolve(false),
      };
      this.#timers.add(entry);
    });
  }

  close(): void {
    this.#closed = true;
    for (const { timer, resolve } of this.#timers) (clearTimeout(timer), resolve());
    this.#timers.clear();
  }
}

/** Stops listening and destroys every connection, idle, active or hung. */
export async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

/** The Bearer token of a request, if any. */
export function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}
