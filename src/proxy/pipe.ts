// Pipes one accepted connection to its upstream, both ways, with backpressure and half-close.
//
// Half-close matters: a client that shuts down its write side and then waits for the answer
// (request/response protocols, `nc -q`, HTTP/1.0 clients) must still get it. So the end of one
// side only ends (never destroys) the other, and both sockets are created with allowHalfOpen.
// The connection is over when both sockets have closed; an error or the idle timeout on either
// side destroys both.
import type { Socket } from 'node:net';
import type { ProxyStats } from './stats.ts';

export type PipeEnd = 'closed' | 'idle' | 'error';

export interface PipeResult {
  bytesFromClient: number;
  bytesToClient: number;
  /** closed: both sides finished (or were destroyed by close()); idle: idle timeout; error: a socket error. */
  end: PipeEnd;
  error?: Error;
}

export interface PipeOptions {
  /** Destroy both sides after this long with no traffic either way; 0 = never. */
  idleTimeoutMs: number;
  /** Live byte counters, shared by all connections of a proxy. */
  stats: ProxyStats;
  onClose(result: PipeResult): void;
}

export function pipeSockets(client: Socket, upstream: Socket, { idleTimeoutMs, stats, onClose }: PipeOptions): void {
  const result: PipeResult = { bytesFromClient: 0, bytesToClient: 0, end: 'closed' };
  const fail = (end: PipeEnd, error?: Error) => {
    if (result.end === 'closed') {
      result.end = end;
      if (error) result.error = error;
    }
    client.destroy();
    upstream.destroy();
  };

  pump(client, upstream, (n) => {
    result.bytesFromClient += n;
    stats.bytesFromClient += n;
  });
  pump(upstream, client, (n) => {
    result.bytesToClient += n;
    stats.bytesToClient += n;
  });

  const idle = idleTimeoutMs > 0 ? watchIdle(client, upstream, result, idleTimeoutMs, () => fail('idle')) : undefined;
  let open = 2;
  for (const [side, other] of [[client, upstream], [upstream, client]] as const) {
    side.on('error', (err) => fail('error', err));
    side.on('close', () => {
      // Closed after a clean end both ways: the other side has been ended already and closes
      // once its own peer is done. Closed any other way (destroyed): drop the other side too.
      if (!other.destroyed && !(side.readableEnded && side.writableFinished)) other.destroy();
      if (--open === 0) {
        clearInterval(idle); // watched until both have closed: a side left half-open still counts
        onClose(result);
      }
    });
  }
}

/**
 * The idle timeout as one timer per connection that looks at the byte counts IDLE_TICKS times
 * per `ms`, rather than socket.setTimeout on both sockets, which re-arms a timer on every read
 * and every write (four timer refreshes per chunk on the bulk path). Traffic is a byte read
 * either way, or a write completing (the write queues shrink: a slow reader draining what
 * backpressure held is not idle). A quiet connection ends after `ms` to `ms` × (1 + 1/IDLE_TICKS).
 */
const IDLE_TICKS = 4;
function watchIdle(client: Socket, upstream: Socket, result: PipeResult, ms: number, idle: () => void): NodeJS.Timeout {
  let seen = -1;
  let queued = -1;
  let quiet = 0;
  const timer = setInterval(() => {
    const total = result.bytesFromClient + result.bytesToClient;
    const pending = client.writableLength + upstream.writableLength;
    if (total !== seen || pending !== queued) {
      seen = total;
      queued = pending;
      quiet = 0;
    } else if (++quiet >= IDLE_TICKS) {
      clearInterval(timer);
      idle();
    }
  }, Math.max(1, Math.floor(ms / IDLE_TICKS)));
  timer.unref(); // as socket timeouts: a quiet connection never keeps the process alive
  return timer;
}

function pump(from: Socket, to: Socket, count: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    count(chunk.length);
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  // A socket paused before piping began (permissive mode pauses it to look at its first bytes)
  // does not start flowing by itself when a 'data' listener is added.
  from.resume();
  from.on('end', () => to.end());
  // A socket that got its FIN before piping began (a client that connects and leaves at once)
  // has emitted 'end' already, with nobody listening.
  if (from.readableEnded) to.end();
}
