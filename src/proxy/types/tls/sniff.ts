// Permissive mode: is this connection TLS or plaintext? A TLS connection starts with a
// handshake record: content type 0x16, then version 0x03 0x0N (N ≤ 4) — what Envoy's
// tls_inspector looks at. The bytes read to decide are put back, so whatever handles the
// connection next sees it from its first byte.
import type { Socket } from 'node:net';

export type Sniffed = 'tls' | 'plaintext';

const PREFIX = 3;

/** Classifies `bytes` (the first ones of a connection), or undefined when more are needed. */
export function classify(bytes: Buffer): Sniffed | undefined {
  if (bytes.length >= 1 && bytes[0] !== 0x16) return 'plaintext';
  if (bytes.length >= 2 && bytes[1] !== 0x03) return 'plaintext';
  if (bytes.length >= 3) return bytes[2]! <= 0x04 ? 'tls' : 'plaintext';
  return undefined;
}

/**
 * Reads until the first bytes decide, puts them back and pauses the socket, then calls `done`.
 * A client that closes first calls `gone`. The caller bounds the wait (the handshake timeout).
 */
export function sniff(socket: Socket, done: (kind: Sniffed) => void, gone: () => void): void {
  peek(socket, (seen) => classify(seen.subarray(0, PREFIX)), done, gone);
}

/**
 * Reads until `decide` returns a verdict on the bytes seen so far, puts them back (whatever
 * handles the connection next sees it from its first byte), pauses the socket, calls `done`.
 */
export function peek<T>(socket: Socket, decide: (seen: Buffer) => T | undefined, done: (verdict: T) => void, gone: () => void): void {
  let seen: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const verdict = decide(seen);
    if (verdict === undefined) return;
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.pause();
    socket.unshift(seen);
    done(verdict);
  };
  const onEnd = () => {
    socket.off('data', onData);
    gone();
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
}
