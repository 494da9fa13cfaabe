// What the fault-injection test throws at a listener from the client side: a seeded PRNG (so a
// failure can be replayed: FAULT_SEED), raw sockets that send bytes, trickle, stall or reset,
// captured TLS ClientHellos to cut short, malformed HTTP/1.1 requests, and raw HTTP/2 frames.
import { once } from 'node:events';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { mulberry32 } from '../helpers/mulberry32.ts';
import { connect as tlsConnect } from 'node:tls';

/** Seeded: the same sequence for the same seed on every machine. */
export function prng(seed: number): Rng {
  const next = mulberry32(seed);
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    bytes: (n) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256))),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
  };
}

export interface Rng {
  next(): number;
  int(lo: number, hi: number): number;
  bytes(n: number): Buffer;
  pick<T>(xs: readonly T[]): T;
}

/** A per-test seed: the run's seed mixed with the test's name, so each test replays alone. */
export function seedFor(seed: number, name: string): number {
  let h = seed >>> 0;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** Opens a TCP connection to 127.0.0.1:port; resolves once connected (rejects on error). */
export async function dial(port: number): Promise<Socket> {
  const s = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  s.on('error', () => {}); // a reset from the other side is an outcome here, not a failure
  await once(s, 'connect');
  return s;
}

/**
 * Resolves when the other side ends or closes `s` (true), or after `ms` (false); destroys it
 * either way. Our sockets are half-open capable, so a peer's FIN alone would not close them.
 */
export function closedBy(s: Socket, ms: number): Promise<boolean> {
  if (s.closed || s.readableEnded) {
    s.destroy();
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const done = (byPeer: boolean) => {
      clearTimeout(timer);
      s.off('end', onEnd);
      s.off('close', onClose);
      s.destroy();
      resolve(byPeer);
    };
    const onEnd = () => done(true);
    const onClose = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    s.resume(); // 'end' comes only once the data is read (collect() may read it too)
    s.once('end', onEnd);
    s.once('close', onClose);
  });
}

/** Collects what arrives until the peer ends or closes, `until` holds, or `ms` passes; then destroys the socket. */
export function collect(s: Socket, ms: number, until?: (got: Buffer) => boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => {
    chunks.push(c);
    if (until?.(Buffer.concat(chunks))) s.destroy();
  });
  return closedBy(s, ms).then(() => Buffer.concat(chunks));
}

export type Ending = 'end' | 'reset' | 'wait';
export const ENDINGS: readonly Ending[] = ['end', 'reset', 'wait'];

/** Sends `data` on a new connection, then half-closes, resets, or waits (at most `waitMs`); returns what came back. */
export async function sendRaw(port: number, data: Buffer, ending: Ending, waitMs: number): Promise<Buffer> {
  const s = await dial(port);
  const got = collect(s, waitMs);
  s.write(data);
  if (ending === 'end') s.end();
  else if (ending === 'reset') setImmediate(() => s.resetAndDestroy());
  return got;
}

/** Writes `data` one byte at a time, `gapMs` apart (a trickling client); returns what came back. */
export async function trickle(port: number, data: Buffer, gapMs: number, waitMs: number, until?: (got: Buffer) => boolean): Promise<Buffer> {
  const s = await dial(port);
  const got = collect(s, waitMs, until);
  for (let i = 0; i < data.length && !s.destroyed; i++) {
    s.write(data.subarray(i, i + 1));
    await new Promise((r) => setTimeout(r, gapMs));
  }
  return got;
}

/** A real ClientHello (what Node's TLS client sends first), captured from a throwaway server. */
export async function captureClientHello(options: { psk?: boolean } = {}): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const first = once(server, 'connection').then(async ([sock]: Socket[]) => {
    const [chunk] = (await once(sock!, 'data')) as [Buffer];
    sock!.destroy();
    return chunk;
  });
  const c = tlsConnect({
    host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false,
    ...(options.psk ? { minVersion: 'TLSv1.3' as const, ciphers: 'TLS_AES_128_GCM_SHA256', pskCallback: () => ({ psk: Buffer.alloc(32, 1), identity: 'Client1' }) } : {}),
  });
  c.on('error', () => {});
  const hello = await first;
  c.destroy();
  server.close();
  return hello;
}

// ---- HTTP/1.1 requests that a parser must refuse (or carry) without harm ----------------------
const b = (s: string) => Buffer.from(s, 'latin1');
const u = (s: string) => Buffer.from(s, 'utf8');

/** Malformed or odd requests; `target` is what a well-formed one would ask for, `extra` headers it needs. */
export function malformedRequests(target: string, host: string, extra: string, rng: Rng): Record<string, Buffer> {
  const line = (t = target) => `GET ${t} HTTP/1.1\r\nHost: ${host}\r\n${extra}`;
  return {
    'method-ctl': b(`G\x01ET ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`),
    'target-utf8': Buffer.concat([b(`GET ${target}`), u('/日本🙂'), b('\x7f HTTP/1.1\r\n'), b(`Host: ${host}\r\n${extra}\r\n`)]),
    'target-nul': b(line(`${target}\x00x`) + '\r\n'),
    'header-nul': b(`${line()}X-A: a\x00b\r\n\r\n`),
    'header-ctl': b(`${line()}X-A: a\x01\x1b[31m\r\n\r\n`),
    'header-utf8': Buffer.concat([b(line()), b('X-A: '), u('日本🙂'), b('\r\n\r\n')]),
    'header-name-utf8': Buffer.concat([b(line()), u('X-Ä'), b(': 1\r\n\r\n')]),
    'header-name-space': b(`${line()}X A: 1\r\n\r\n`),
    'host-utf8': Buffer.concat([b(`GET ${target} HTTP/1.1\r\nHost: `), u('日本.test'), b(`\r\n${extra}\r\n`)]),
    'host-missing': b(`GET ${target} HTTP/1.1\r\n${extra}\r\n`),
    'obs-fold': b(`${line()}X-Fold: a\r\n b\r\n\r\n`),
    'huge-header': b(`${line()}X-Big: ${'a'.repeat(100_000)}\r\n\r\n`),
    'many-headers': b(`${line()}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}\r\n`),
    'long-target': b(line(`${target}${'/a'.repeat(40_000)}`) + '\r\n'),
    'cl-conflict': b(`POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc`),
    'cl-te': b(`POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`),
    'chunk-bad': b(`POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n`),
    'cl-huge': b(`POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Length: 99999999999999999999\r\n\r\nab`),
    'http09': b(`GET ${target}\r\n`),
    'version-bad': b(`GET ${target} HTTP/7.0\r\nHost: ${host}\r\n${extra}\r\n`),
    'h2-preface': Buffer.concat([b('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), rng.bytes(200)]),
    pipelined: Buffer.concat([b(`${line()}\r\n`), b(`${line()}\r\n`), rng.bytes(300)]),
    upgrade: b(`${line()}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`),
    'expect-continue': b(`POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${extra}Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello`),
    'xfcc-spoof': b(`${line()}X-Forwarded-Client-Cert: By=spiffe://evil;Hash=00\r\nClient-Cert: :AAAA:\r\nClient-Cert-Chain: :AAAA:\r\n\r\n`),
    'connect-weird': Buffer.concat([b('CONNECT '), u('日本.test'), b(':99999 HTTP/1.1\r\nHost: x\r\n\r\n')]),
    'connect-bracket': b('CONNECT [::1 HTTP/1.1\r\nHost: x\r\n\r\n'),
    'absolute-port0': b(`GET http://${host}:0/ok HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`),
    'absolute-userinfo': b(`GET http://user:pw@${host}/ok HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`),
    'absolute-pct-host': b(`GET http://${host}%00.evil/ok HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`),
    'absolute-ipv6': b(`GET http://[::1]:80/ok HTTP/1.1\r\nHost: [::1]\r\n${extra}\r\n`),
    'query-junk': Buffer.concat([b(`GET ${target}?audience=%00%ff%0d%0aX:`), u('日本'), b(`&scopes=%0d%0a&recursive=true&alt=json HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`)]),
    'xff': b(`${line()}X-Forwarded-For: 1.2.3.4\r\n\r\n`),
    random: rng.bytes(rng.int(1, 4096)),
  };
}

// ---- HTTP/2 frames, by hand: what a fuzzer needs is what node:http2 would never send -----------
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function h2frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** HPACK literal without indexing, new name (no Huffman): enough to say anything. */
export function hpackLiteral(name: string | Buffer, value: string | Buffer): Buffer {
  const n = typeof name === 'string' ? Buffer.from(name, 'latin1') : name;
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  if (n.length > 126 || v.length > 126) throw new Error('hpackLiteral: keep it under 127 bytes');
  return Buffer.concat([Buffer.from([0x00, n.length]), n, Buffer.from([v.length]), v]);
}

/** A POST tunnel request's header block for `path` on `authority`. */
export function h2PostHeaders(authority: string, path = '/', more: Buffer[] = []): Buffer {
  return Buffer.concat([
    hpackLiteral(':method', 'POST'), hpackLiteral(':scheme', 'http'), hpackLiteral(':authority', authority), hpackLiteral(':path', path), ...more,
  ]);
}

const HEADERS = 1, RST = 3, SETTINGS = 4, PING = 6, WINDOW_UPDATE = 8, CONTINUATION = 9, PRIORITY = 2, DATA = 0;
const END_STREAM = 0x1, END_HEADERS = 0x4;

/** Raw HTTP/2 attacks on an h2c tunnel server: each a byte string after the preface. */
export function h2Attacks(authority: string, rng: Rng, scale: number): Record<string, Buffer> {
  const settings = h2frame(SETTINGS, 0, 0);
  const n = (k: number) => Math.max(1, Math.round(k * scale));
  const post = (id: number, more: Buffer[] = [], flags = END_HEADERS) => h2frame(HEADERS, flags, id, h2PostHeaders(authority, '/', more));
  const ids = (count: number) => Array.from({ length: count }, (_, i) => 1 + 2 * i);
  return {
    'settings-flood': Buffer.concat([settings, ...Array.from({ length: n(3000) }, () => settings)]),
    'ping-flood': Buffer.concat([settings, ...Array.from({ length: n(5000) }, () => h2frame(PING, 0, 0, rng.bytes(8)))]),
    'rapid-reset': Buffer.concat([settings, ...ids(n(1000)).flatMap((id) => [post(id), h2frame(RST, 0, id, Buffer.from([0, 0, 0, 8]))])]),
    'continuation-flood': Buffer.concat([settings, post(1, [], 0), ...Array.from({ length: n(3000) }, () => h2frame(CONTINUATION, 0, 1, hpackLiteral('x-a', 'b'.repeat(100))))]),
    'streams-beyond-max': Buffer.concat([settings, ...ids(n(300)).map((id) => post(id))]),
    'window-overflow': Buffer.concat([settings, post(1), h2frame(WINDOW_UPDATE, 0, 1, Buffer.from([0x7f, 0xff, 0xff, 0xff])), h2frame(WINDOW_UPDATE, 0, 1, Buffer.from([0x7f, 0xff, 0xff, 0xff]))]),
    'window-zero': Buffer.concat([settings, h2frame(WINDOW_UPDATE, 0, 0, Buffer.from([0, 0, 0, 0]))]),
    'hpack-garbage': Buffer.concat([settings, h2frame(HEADERS, END_HEADERS, 1, rng.bytes(64))]),
    'hpack-table-bomb': Buffer.concat([settings, h2frame(HEADERS, END_HEADERS, 1, Buffer.concat([Buffer.from([0x3f, 0xe1, 0xff, 0x03]), h2PostHeaders(authority)]))]),
    'pseudo-ctl': Buffer.concat([settings, h2frame(HEADERS, END_HEADERS, 1, Buffer.concat([
      hpackLiteral(':method', 'POST'), hpackLiteral(':scheme', 'http'), hpackLiteral(':authority', Buffer.from('日本\x00.test', 'utf8')), hpackLiteral(':path', '/\x01\x7f'),
    ]))]),
    'header-nul': Buffer.concat([settings, post(1, [hpackLiteral('x-a', 'a\x00b'), hpackLiteral('x-b', Buffer.from('日本', 'utf8'))])]),
    'header-upper': Buffer.concat([settings, post(1, [hpackLiteral('X-Upper', '1')])]),
    'connect-weird': Buffer.concat([settings, h2frame(HEADERS, END_HEADERS, 1, Buffer.concat([hpackLiteral(':method', 'CONNECT'), hpackLiteral(':authority', Buffer.from('日本:0\x00', 'utf8'))]))]),
    'data-idle-stream': Buffer.concat([settings, h2frame(DATA, END_STREAM, 7, rng.bytes(100))]),
    'priority-self': Buffer.concat([settings, h2frame(PRIORITY, 0, 3, Buffer.from([0, 0, 0, 3, 16]))]),
    'huge-frame': Buffer.concat([settings, Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1]), rng.bytes(200)]),
    'data-after-end': Buffer.concat([settings, post(1, [], END_HEADERS | END_STREAM), h2frame(DATA, 0, 1, rng.bytes(100))]),
    'even-stream': Buffer.concat([settings, post(2)]),
    random: Buffer.concat([settings, rng.bytes(rng.int(1, 4096))]),
  };
}
