// The kernel byte path's thread (see ./splice.ts): a synchronous poll(2) + splice(2) loop over
// the plaintext connections handed to it. Per direction, bytes go socket → pipe → socket and
// never enter JavaScript. Half-close is kept: a direction whose source reached EOF and whose
// pipe is empty shuts down its destination's write side (SHUT_WR), and the connection is over
// when both directions have; an error on either side, the idle timeout or a cancel from the
// listener closes everything. This thread owns its duplicated fds and closes each exactly once.
import { receiveMessageOnPort, type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { EAGAIN, EINTR, errnoName, POLLIN, POLLNVAL, POLLOUT, spliceLibc } from './splice-libc.ts';

export interface SpliceFds { client: number; upstream: number; c2u: [number, number]; u2c: [number, number] }
export type ToSplice =
  | { op: 'add'; id: number; group: number; fds: SpliceFds; inC2U: number; inU2C: number; idleMs: number; pipeBytes: number }
  | { op: 'cancel'; id: number };
export type FromSplice =
  | { op: 'closed'; id: number; fromClient: number; toClient: number; end: 'closed' | 'idle' | 'error'; reason?: string }
  /** Live counts since the last report: id, from the client, to the client, per connection. */
  | { op: 'bytes'; counts: number[] };

/**
 * `count`: its index in the shared counts (./splice.ts), where `bytes` is stored after each move.
 * `stalled`: its pipe took nothing though poll said the source was readable, with bytes in it
 * waiting for the destination: full in slots (64 small chunks) before it is full in bytes. Its
 * source is not polled again until the pipe drains: poll would say readable at once, forever.
 */
interface Direction { src: number; dst: number; r: number; w: number; inPipe: number; eof: boolean; shut: boolean; bytes: number; count: number; stalled: boolean }
interface Conn { id: number; group: number; fds: number[]; c2u: Direction; u2c: Direction; idleMs: number; last: number; cap: number; reported: [number, number] }

/** Longest poll: a terminate() from the parent is noticed within this (V8 stops JS, not a syscall). */
const MAX_WAIT_MS = 1_000;
/** Live byte counts go to the listener at most this often. */
const REPORT_MS = 1_000;

const { wake, port, table: sab, counts: countsSab, failPoll, spliceCalls } = workerData as {
  wake: number; port: MessagePort; table: SharedArrayBuffer; counts: SharedArrayBuffer; failPoll?: Int32Array; spliceCalls?: Int32Array;
};
/** fd + 1 per open fd, six per connection (./splice.ts): cleared before each close. */
const table = new Int32Array(sab);
/** Bytes moved per connection (from, to the client), for the listener should this thread die. */
const counts = new Float64Array(countsSab);
const lib = spliceLibc();
if (failPoll) {
  // Tests (./splice.ts spliceFaultsForTests): EINVAL once they say so.
  const poll = lib.poll;
  lib.poll = (fds, count, timeoutMs) => (Atomics.load(failPoll, 0) !== 0 ? -22 : poll(fds, count, timeoutMs));
}
if (spliceCalls) {
  // Tests: how many splice(2) calls this thread makes.
  const splice = lib.splice;
  lib.splice = (from, to, len) => (Atomics.add(spliceCalls, 0, 1), splice(from, to, len));
}
const conns = new Map<number, Conn>();
let pollfds = Buffer.alloc(8 * 64);
const scratch = Buffer.alloc(256);
let owner: { conn: Conn; dir: Direction; out: boolean }[] = [];
let reportedAt = performance.now();

const post = (m: FromSplice) => parentPort!.postMessage(m);

function add(m: Extract<ToSplice, { op: 'add' }>): void {
  const { client, upstream, c2u, u2c } = m.fds;
  // What Node had read counts as moved: it came from that side.
  const dir = (src: number, dst: number, [r, w]: [number, number], inPipe: number, count: number): Direction =>
    ({ src, dst, r, w, inPipe, eof: false, shut: false, bytes: inPipe, count, stalled: false });
  const c: Conn = {
    id: m.id, group: m.group, fds: [client, upstream, ...c2u, ...u2c], idleMs: m.idleMs, last: performance.now(), cap: m.pipeBytes, reported: [0, 0],
    c2u: dir(client, upstream, c2u, m.inC2U, 2 * m.group), u2c: dir(upstream, client, u2c, m.inU2C, 2 * m.group + 1),
  };
  // counts[] starts at inC2U / inU2C: the listener thread wrote them when it handed this over.
  conns.set(m.id, c);
  // Bytes Node had read already (a sniffed first chunk) are in the pipes: sent now.
  if (move(c, c.c2u, false) && move(c, c.u2c, false)) finished(c);
}

function finished(c: Conn): void {
  if (c.c2u.shut && c.u2c.shut) end(c, 'closed');
}

function report(): void {
  const counts: number[] = [];
  for (const c of conns.values()) {
    const [from, to] = c.reported;
    if (c.c2u.bytes === from && c.u2c.bytes === to) continue;
    counts.push(c.id, c.c2u.bytes - from, c.u2c.bytes - to);
    c.reported = [c.c2u.bytes, c.u2c.bytes];
  }
  if (counts.length > 0) post({ op: 'bytes', counts });
  reportedAt = performance.now();
}

function end(c: Conn, how: 'closed' | 'idle' | 'error', reason?: string): void {
  if (!conns.delete(c.id)) return;
  // Cleared first: a thread ended between the two leaks one fd rather than closing a reused one twice.
  c.fds.forEach((fd, k) => {
    Atomics.store(table, c.group * c.fds.length + k, 0);
    lib.close(fd);
  });
  post({ op: 'closed', id: c.id, fromClient: c.c2u.bytes, toClient: c.u2c.bytes, end: how, ...(reason ? { reason } : {}) });
}

/** Moves what it can of one direction; false when the connection ended (an error). */
function move(c: Conn, d: Direction, readable: boolean): boolean {
  if (readable && !d.eof && d.inPipe < c.cap) {
    const n = lib.splice(d.src, d.w, c.cap - d.inPipe);
    if (n > 0) {
      d.inPipe += n;
      d.bytes += n;
      counts[d.count] = d.bytes;
      c.last = performance.now();
    } else if (n === 0) d.eof = true;
    else if (n === -EAGAIN) d.stalled = d.inPipe > 0; // with an empty pipe: a wake-up without data
    else if (n !== -EINTR) return end(c, 'error', errnoName(-n)), false;
  }
  while (d.inPipe > 0) {
    const n = lib.splice(d.r, d.dst, d.inPipe);
    if (n > 0) {
      d.inPipe -= n;
      d.stalled = false;
      c.last = performance.now();
    } else if (n === -EAGAIN || n === -EINTR) break;
    else return end(c, 'error', errnoName(n === 0 ? 32 : -n)), false;
  }
  if (d.eof && d.inPipe === 0 && !d.shut) {
    d.shut = true;
    // ENOTCONN: the peer is gone already; the other direction finds out on its own.
    lib.shutdownWrite(d.dst);
  }
  return true;
}

function takeMessages(): void {
  while (lib.read(wake, scratch) > 0);
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const msg = m.message as ToSplice;
    if (msg.op === 'add') add(msg);
    else {
      const c = conns.get(msg.id);
      if (c) end(c, 'closed');
    }
  }
}

function setPollfd(i: number, fd: number, events: number): void {
  if (pollfds.length < 8 * (i + 1)) {
    const bigger = Buffer.alloc(pollfds.length * 2);
    pollfds.copy(bigger);
    pollfds = bigger;
  }
  pollfds.writeInt32LE(fd, 8 * i);
  pollfds.writeInt16LE(events, 8 * i + 4);
  pollfds.writeInt16LE(0, 8 * i + 6);
}

for (;;) {
  let count = 0;
  owner = [];
  setPollfd(count++, wake, POLLIN);
  let wait = MAX_WAIT_MS;
  const now = performance.now();
  for (const c of conns.values()) {
    if (c.idleMs > 0) {
      const left = c.last + c.idleMs - now;
      if (left <= 0) {
        end(c, 'idle');
        continue;
      }
      wait = Math.min(wait, Math.ceil(left));
    }
    for (const d of [c.c2u, c.u2c]) {
      if (!d.eof && !d.stalled && d.inPipe < c.cap) (owner[count] = { conn: c, dir: d, out: false }), setPollfd(count++, d.src, POLLIN);
      if (d.inPipe > 0) (owner[count] = { conn: c, dir: d, out: true }), setPollfd(count++, d.dst, POLLOUT);
    }
  }
  const ready = lib.poll(pollfds, count, wait);
  if (ready < 0 && ready !== -EINTR) throw new Error(`poll failed: ${errnoName(-ready)}`);
  for (let i = 1; ready > 0 && i < count; i++) {
    const revents = pollfds.readInt16LE(8 * i + 6);
    if (revents === 0) continue;
    const { conn, dir, out } = owner[i]!;
    if (!conns.has(conn.id)) continue;
    if (revents & POLLNVAL) {
      end(conn, 'error', 'EBADF');
      continue;
    }
    // POLLERR/POLLHUP: the splice itself reports what happened (an errno, or EOF).
    if (move(conn, dir, !out)) finished(conn);
  }
  if (ready > 0 && (pollfds.readInt16LE(6) & POLLIN)) takeMessages();
  if (performance.now() - reportedAt >= REPORT_MS) report();
}
