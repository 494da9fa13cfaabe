// Plaintext to plaintext legs (permissive mode's plaintext clients) in the kernel: the bytes go
// socket → pipe → socket by splice(2) in a thread of their own (./splice-thread.ts) and never
// enter JavaScript. Node's socket pipe tops out at about half of direct TCP on loopback.
//
// The hand-over: Node stops reading both sockets, the bytes it had read already (the sniffed
// first chunk, an early server greeting) go into the pipes, and the thread gets duplicates of
// both fds (close-on-exec) and the pipes. Node's sockets stay open and idle until the thread
// says the connection is over, so the listener's connection count, its limit and close() work
// as for a piped connection: a Node socket destroyed meanwhile (close(), the failure boundary)
// cancels the thread's side. The thread owns its fds and closes them; if the thread itself
// ends, they are closed here. Anything that does not fit this path (a socket already ending,
// bytes queued, koffi missing, the thread unavailable) goes through pipeSockets as before.
//
// Failures are said once, not per connection: splice unavailable in a listener thread (koffi or
// a libc symbol missing) is one warning and Node's pipe for good; a splice thread that fails
// ends the connections it was moving (each counted as a fault, ended 'error', bytes counted to
// the end from a shared table), is one warning, and the next connections take Node's pipe for
// a pause that doubles at each failure (FIRST_PAUSE_MS to MAX_PAUSE_MS) instead of a new
// thread per connection.
import type { Socket } from 'node:net';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { Log } from '../lib/log.ts';
import { guard } from './boundary.ts';
import type { PipeOptions, PipeResult } from './pipe.ts';
import { type SpliceLibc, spliceLibc } from './splice-libc.ts';
import type { FromSplice, SpliceFds, ToSplice } from './splice-thread.ts';

const THREAD_URL = new URL(import.meta.url.endsWith('.ts') ? './splice-thread.ts' : './splice-thread.js', import.meta.url);
/** Per direction; a larger pipe is fewer splices per MiB (the kernel may give less: measured). */
const PIPE_BYTES = 256 * 1024;
/**
 * Pipe capacity one listener thread may hold (two pipes per spliced connection): 16 connections
 * at PIPE_BYTES; the next ones take Node's pipe until some end. Pipe capacity is charged to the
 * init's user (the container's root, its program too) against fs.pipe-user-pages-soft (64 MiB by
 * default, without CAP_SYS_RESOURCE); past it the kernel gives every new pipe of that user, the
 * program's too, two pages. Unbounded, ~120 plaintext clients would do that; bounded, it takes
 * eight listener threads each splicing 16.
 */
const PIPE_BUDGET = 8 * 1024 * 1024;
let pipeBytesHeld = 0;
const WAKE = Buffer.from([1]);

/**
 * The fds the splice thread holds, six per connection (client, upstream, two pipes), each as
 * fd + 1 in a shared table: the thread clears an entry before it closes that fd, so whoever
 * outlives the thread (this thread if the splice thread dies, the init's thread if this listener
 * worker ends, even terminated or out of memory) closes exactly what is still open. Connections
 * beyond FD_GROUPS at once in one thread take Node's pipe.
 */
const FD_GROUPS = 4096;
const FDS_PER_CONN = 6;
/** Node's pipe after a splice thread failed: for this long, doubled at each failure up to MAX_PAUSE_MS. */
const FIRST_PAUSE_MS = 30_000;
const MAX_PAUSE_MS = 3_600_000;
/** What a connection through Node's pipe costs instead (docs/BENCHMARKS.md: 0.9–1.5 against 0.2–0.4 ms CPU per MiB). */
const NODE_COST = 'moving permissive plaintext through Node: CPU ~3× per MiB';

/** Who uses the splice path: the listener's log and label, for the one-line warnings. */
export interface SpliceUser { log: Log; label: string }

/**
 * Tests only: make this thread's libc load fail; make the splice thread's poll(2) fail once
 * `poll[0]` (a shared Int32Array) is not 0; a smaller pipe budget; count the thread's splice(2)
 * calls in `spliceCalls[0]`.
 */
export const spliceFaultsForTests: { load?: Error; poll?: Int32Array; pipeBudget?: number; spliceCalls?: Int32Array } = {};
/** Plus two entries at the end: the thread's wake-up pipe. */
export const newSpliceFdTable = (): SharedArrayBuffer => new SharedArrayBuffer(4 * (FDS_PER_CONN * FD_GROUPS + 2));
const WAKE_ENTRY = FDS_PER_CONN * FD_GROUPS;
let table: Int32Array | undefined;
let freeGroups: number[] | undefined;
/** A listener worker's table, from the init's thread (which closes what is left when the worker ends). */
export function useSpliceFdTable(sab: SharedArrayBuffer): void {
  table = new Int32Array(sab);
}
function fdTable(): Int32Array {
  table ??= new Int32Array(newSpliceFdTable());
  return table;
}
/** Closes every fd still recorded in `sab` (its splice thread is gone). */
export function closeRecordedFds(sab: SharedArrayBuffer, t = new Int32Array(sab)): void {
  for (let i = 0; i < t.length; i++) {
    const v = Atomics.exchange(t, i, 0);
    if (v > 0) spliceLibc().close(v - 1);
  }
}
function closeGroup(group: number): void {
  const t = fdTable();
  for (let k = 0; k < FDS_PER_CONN; k++) {
    const v = Atomics.exchange(t, group * FDS_PER_CONN + k, 0);
    if (v > 0) spliceLibc().close(v - 1);
  }
}

interface Live {
  client: Socket;
  upstream: Socket;
  /** Its entries in the fd table. */
  group: number;
  options: PipeOptions;
  result: PipeResult;
  /** The thread has closed its fds (or died). */
  done: boolean;
  /** Node sockets not yet closed. */
  open: number;
  /** Capacity of its two pipes, against PIPE_BUDGET until it is over. */
  pipeBytes: number;
  counted: { fromClient: number; toClient: number };
  /** The listener's failure boundary for this connection: its handlers run inside it. */
  onFault(err: unknown): void;
}

/** Two live byte counts per fd group (from the client, to the client), written by the thread. */
const COUNTS_PER_CONN = 2;

interface NodeHandle { fd?: number; reading?: boolean; readStop?(): number }
const handleOf = (s: Socket): NodeHandle | undefined => (s as unknown as { _handle?: NodeHandle })._handle ?? undefined;

class SpliceThread {
  readonly #lib: SpliceLibc;
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #wake: [number, number];
  readonly #live = new Map<number, Live>();
  /** The thread's counts per group (COUNTS_PER_CONN each): what it moved up to its end, even a crash. */
  readonly #counts = new Float64Array(new SharedArrayBuffer(8 * COUNTS_PER_CONN * FD_GROUPS));
  readonly #user: SpliceUser;
  #error: unknown;
  #next = 1;
  dead = false;

  constructor(lib: SpliceLibc, user: SpliceUser) {
    this.#lib = lib;
    this.#user = user;
    const [r, w] = lib.pipe(4096);
    this.#wake = [r, w];
    Atomics.store(fdTable(), WAKE_ENTRY, r + 1);
    Atomics.store(fdTable(), WAKE_ENTRY + 1, w + 1);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    port1.unref(); // only ever posted to
    // A small heap: the loop allocates a few objects per connection, never the bytes.
    this.#worker = new Worker(THREAD_URL, {
      workerData: { wake: r, port: port2, table: fdTable(), counts: this.#counts.buffer, failPoll: spliceFaultsForTests.poll, spliceCalls: spliceFaultsForTests.spliceCalls },
      transferList: [port2], stdout: false, stderr: false,
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 },
    });
    this.#worker.on('message', (m: FromSplice) => this.#onMessage(m));
    this.#worker.on('error', (err) => (this.#error = err)); // 'exit' follows and cleans up
    this.#worker.on('exit', () => this.#onExit());
    // After the listeners (a 'message' listener refs it again): idle connections do not keep
    // the process alive, as with sockets.
    this.#worker.unref();
  }

  hand(client: Socket, upstream: Socket, group: number, fds: SpliceFds, inC2U: number, inU2C: number, pipeSizes: [number, number], options: PipeOptions, onFault: (err: unknown) => void): void {
    const id = this.#next++;
    const pipeBytes = pipeSizes[0] + pipeSizes[1];
    pipeBytesHeld += pipeBytes;
    const live: Live = {
      client, upstream, group, options, done: false, open: 2, pipeBytes,
      result: { bytesFromClient: 0, bytesToClient: 0, end: 'closed' }, counted: { fromClient: 0, toClient: 0 }, onFault,
    };
    this.#live.set(id, live);
    // What Node had read is in the pipes, so moved already: counted from here, even if the thread
    // dies before it reads this 'add' (a previous connection's counts are overwritten).
    this.#counts[group * COUNTS_PER_CONN] = inC2U;
    this.#counts[group * COUNTS_PER_CONN + 1] = inU2C;
    for (const s of [client, upstream]) {
      s.on('error', () => {}); // nothing reads or writes them any more; a late error is moot
      s.once('close', guard(onFault, () => {
        live.open--;
        // Destroyed from here (close(), the failure boundary): the thread lets go of it too.
        if (!live.done) this.#send({ op: 'cancel', id });
        for (const other of [client, upstream]) other.destroy();
        this.#settle(id, live);
      }));
    }
    this.#send({ op: 'add', id, group, fds, inC2U, inU2C, idleMs: options.idleTimeoutMs, pipeBytes: Math.min(...pipeSizes) });
  }

  #send(m: ToSplice): void {
    this.#port.postMessage(m);
    this.#lib.writeAll(this.#wake[1], WAKE); // a full wake pipe wakes it just as well
  }

  #count(live: Live, fromClient: number, toClient: number): void {
    const { stats } = live.options;
    stats.bytesFromClient += fromClient - live.counted.fromClient;
    stats.bytesToClient += toClient - live.counted.toClient;
    live.counted = { fromClient, toClient };
  }

  #onMessage(m: FromSplice): void {
    if (m.op === 'bytes') {
      for (let i = 0; i + 2 < m.counts.length; i += 3) {
        const live = this.#live.get(m.counts[i]!);
        if (live) this.#count(live, live.counted.fromClient + m.counts[i + 1]!, live.counted.toClient + m.counts[i + 2]!);
      }
      return;
    }
    const live = this.#live.get(m.id);
    if (live) guard(live.onFault, () => this.#closed(m, live))();
  }

  #closed(m: Extract<FromSplice, { op: 'closed' }>, live: Live): void {
    live.done = true;
    this.#count(live, m.fromClient, m.toClient);
    Object.assign(live.result, { bytesFromClient: m.fromClient, bytesToClient: m.toClient });
    if (live.result.end === 'closed' && m.end !== 'closed') {
      live.result.end = m.end;
      if (m.reason) live.result.error = Object.assign(new Error(m.reason), { code: m.reason });
    }
    live.client.destroy();
    live.upstream.destroy();
    this.#settle(m.id, live);
  }

  #settle(id: number, live: Live): void {
    if (!live.done || live.open > 0 || !this.#live.delete(id)) return;
    freeGroups!.push(live.group);
    pipeBytesHeld -= live.pipeBytes;
    live.options.onClose(live.result);
  }

  #onExit(): void {
    this.dead = true;
    const cause = this.#error ?? new Error('the splice thread ended');
    const reason = (cause as NodeJS.ErrnoException).code ?? (cause instanceof Error ? cause.message : String(cause));
    const cut = [...this.#live].filter(([, live]) => !live.done);
    pause(this.#user, reason, cut.filter(([, live]) => live.open > 0).length);
    // The thread is gone and cannot close what it held: its connections end here, each a fault
    // of its listener (counted in connection_faults_total), with the bytes the thread moved.
    for (const [id, live] of cut) {
      closeGroup(live.group); // what the thread had not closed yet
      live.done = true;
      const at = live.group * COUNTS_PER_CONN;
      this.#count(live, Math.max(live.counted.fromClient, this.#counts[at]!), Math.max(live.counted.toClient, this.#counts[at + 1]!));
      Object.assign(live.result, { bytesFromClient: live.counted.fromClient, bytesToClient: live.counted.toClient });
      guard(live.onFault, () => {
        // Sockets closed already (a cancel not yet answered): nothing was lost, it ends as it was.
        if (live.open === 0) return this.#settle(id, live);
        if (live.result.end === 'closed') Object.assign(live.result, { end: 'error', error: Object.assign(new Error(reason), { code: 'ESPLICETHREAD' }) });
        live.onFault(live.result.error); // ends both sockets: their 'close' settles it
      })();
    }
    for (const k of [WAKE_ENTRY, WAKE_ENTRY + 1]) {
      const v = Atomics.exchange(fdTable(), k, 0);
      if (v > 0) this.#lib.close(v - 1);
    }
    this.#port.close();
  }
}

let thread: SpliceThread | undefined;
// TEE_INIT_SPLICE=off: Node's pipe for every connection (a kernel without splice on sockets, or
// to compare); read once. Otherwise set (for good) when the libc calls cannot be bound here.
let off: string | undefined = process.env.TEE_INIT_SPLICE === 'off' ? 'TEE_INIT_SPLICE=off' : undefined;
/** After a splice thread failed: Node's pipe until this time (performance.now()). */
let pausedUntil = 0;
let nextPause = FIRST_PAUSE_MS;

function pause(user: SpliceUser, reason: string, connections: number): void {
  pausedUntil = performance.now() + nextPause;
  user.log.warn({ reason, connections, pauseSeconds: nextPause / 1000 },
    `${user.label}: the splice thread failed and its ${connections} connection(s) were ended; ${NODE_COST} for ${nextPause / 1000} s, then a new thread (report this as a bug)`);
  nextPause = Math.min(nextPause * 2, MAX_PAUSE_MS);
}

function spliceThread(user: SpliceUser): SpliceThread | undefined {
  if (off !== undefined || process.platform !== 'linux') return undefined;
  if (thread && !thread.dead) return thread;
  if (performance.now() < pausedUntil) return undefined;
  try {
    if (spliceFaultsForTests.load) throw spliceFaultsForTests.load;
    thread = new SpliceThread(spliceLibc(), user);
    return thread;
  } catch (err) {
    // No koffi, or a libc without splice/poll/pipe2 here: Node's pipe, said once per thread.
    off = (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));
    user.log.warn({ reason: off }, `${user.label}: splice(2) is unavailable in this listener thread; ${NODE_COST}; set TEE_INIT_SPLICE=off to silence`);
    return undefined;
  }
}

/** A socket Node has not started to end, with nothing queued to write. */
function quiet(s: Socket): boolean {
  const fd = handleOf(s)?.fd;
  const state = (s as unknown as { _readableState: { ended: boolean } })._readableState;
  return fd !== undefined && fd >= 0 && !s.destroyed && !s.connecting && !state.ended && !s.writableEnded && s.writableLength === 0;
}

function stopReading(s: Socket): void {
  const h = handleOf(s)!;
  if (h.reading) {
    h.reading = false;
    h.readStop?.();
  }
}

/** What Node had read and not delivered; reading stays stopped (read() may have restarted it). */
function takeBuffered(s: Socket): Buffer {
  const b = s.read() as Buffer | null;
  stopReading(s);
  return b ?? Buffer.alloc(0);
}

/**
 * Hands both plaintext sockets to the splice thread; false (nothing changed) when this
 * connection cannot take the kernel path, and the caller pipes it with pipeSockets.
 */
export function spliceSockets(client: Socket, upstream: Socket, options: PipeOptions, onFault: (err: unknown) => void, user: SpliceUser): boolean {
  if (!quiet(client) || !quiet(upstream)) return false;
  if (pipeBytesHeld + 2 * PIPE_BYTES > (spliceFaultsForTests.pipeBudget ?? PIPE_BUDGET)) return false;
  const t = spliceThread(user);
  if (!t) return false;
  freeGroups ??= Array.from({ length: FD_GROUPS }, (_, i) => FD_GROUPS - 1 - i);
  const group = freeGroups.pop();
  if (group === undefined) return false;
  const lib = spliceLibc();
  const slots = fdTable();
  let made = 0;
  const record = (fd: number): number => (Atomics.store(slots, group * FDS_PER_CONN + made++, fd + 1), fd);
  stopReading(client);
  stopReading(upstream);
  const headC = takeBuffered(client);
  const headU = takeBuffered(upstream);
  try {
    // In the order the thread closes them: client, upstream, c2u pipe, u2c pipe.
    const c = record(lib.dup(handleOf(client)!.fd!));
    const u = record(lib.dup(handleOf(upstream)!.fd!));
    const [c2uR, c2uW, c2uSize] = lib.pipe(PIPE_BYTES);
    record(c2uR);
    record(c2uW);
    const [u2cR, u2cW, u2cSize] = lib.pipe(PIPE_BYTES);
    record(u2cR);
    record(u2cW);
    if (!lib.writeAll(c2uW, headC) || !lib.writeAll(u2cW, headU)) throw new Error('the first bytes do not fit a pipe');
    t.hand(client, upstream, group, { client: c, upstream: u, c2u: [c2uR, c2uW], u2c: [u2cR, u2cW] }, headC.length, headU.length, [c2uSize, u2cSize], options, onFault);
    return true;
  } catch {
    closeGroup(group);
    freeGroups.push(group);
    // Back to Node's pipe, which resumes reading, with what had been read put back first.
    if (headC.length > 0) client.unshift(headC);
    if (headU.length > 0) upstream.unshift(headU);
    return false;
  }
}
