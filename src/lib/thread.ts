// What a listener's numbers are shared through. README's limits are the listener's (maxConnections,
// "20 lines a minute per kind"), but with `workers: N` the listener is N threads, each with its
// own server on the port (SO_REUSEPORT: the kernel picks the thread). So the counters live in
// one SharedArrayBuffer per listener, made by the init's thread and handed to each worker, and
// are changed with Atomics only: an increment that finds the limit reached is undone and the
// connection refused, which is exact however the kernel spreads connections.
//
// A worker thread runs exactly one listener, so worker.ts sets the listener's buffer once for
// the whole thread (useSharedLimits) and the engine and limitedWarn() pick it up without every
// type passing it along. In the init's thread (`workers: 0`) each listener gets a buffer of its
// own (listenerLimits() makes a fresh one).
import type { Server } from 'node:net';

/** Log kinds a listener can have budgets for (engine: 3, a type: a few); more share a local budget. */
const LOG_SLOTS = 32;
/** Worker slots: each worker's own share of the open count, given back if it dies uncleanly. */
export const WORKER_SLOTS = 160;

// Int32 layout: [0] open connections, [1] refusing (1 while the limit refuses), then per log
// slot: kind hash, lines logged this window, lines suppressed; then the worker slots. BigInt64
// after that (8-aligned): per log slot the window start in ms since `epoch`.
const OPEN = 0;
const REFUSING = 1;
const HASH = 2;
const LOGGED = HASH + LOG_SLOTS;
const SUPPRESSED = LOGGED + LOG_SLOTS;
const WORKER = SUPPRESSED + LOG_SLOTS;
const INT32S = WORKER + WORKER_SLOTS;
const BIGINT_OFFSET = Math.ceil((INT32S * 4) / 8) * 8;

export interface SharedLimits {
  buffer: SharedArrayBuffer;
  /** The init's clock at creation (ms, performance.timeOrigin-based): threads measure from it. */
  epoch: number;
}

export function createSharedLimits(): SharedLimits {
  const buffer = new SharedArrayBuffer(BIGINT_OFFSET + LOG_SLOTS * 8);
  return { buffer, epoch: performance.timeOrigin + performance.now() };
}

let threadLimits: { limits: SharedLimits; slot: number } | undefined;

/** worker.ts: this thread serves the listener whose counters are `limits`; `slot` is this worker's. */
export function useSharedLimits(limits: SharedLimits, slot: number): void {
  threadLimits = { limits, slot };
}

/** The counters of the listener this thread serves (worker), or fresh ones (the init's thread). */
export function listenerLimits(): Limits {
  return threadLimits ? new Limits(threadLimits.limits, threadLimits.slot) : localLimits();
}

/** Counters of this thread alone. */
export function localLimits(): Limits {
  return new Limits(createSharedLimits(), -1);
}

export class Limits {
  readonly #i32: Int32Array;
  readonly #i64: BigInt64Array;
  readonly #epoch: number;
  readonly #slot: number;

  constructor(limits: SharedLimits, slot: number) {
    this.#i32 = new Int32Array(limits.buffer, 0, INT32S);
    this.#i64 = new BigInt64Array(limits.buffer, BIGINT_OFFSET, LOG_SLOTS);
    this.#epoch = limits.epoch;
    this.#slot = slot;
  }

  /** Takes one of `max` connection slots; false (nothing taken) when all are held. */
  enter(max: number): boolean {
    if (Atomics.add(this.#i32, OPEN, 1) >= max) {
      Atomics.sub(this.#i32, OPEN, 1);
      return false;
    }
    if (this.#slot >= 0) Atomics.add(this.#i32, WORKER + this.#slot, 1);
    return true;
  }

  /** Gives one back; returns how many are held now. */
  leave(): number {
    if (this.#slot >= 0) Atomics.sub(this.#i32, WORKER + this.#slot, 1);
    return Atomics.sub(this.#i32, OPEN, 1) - 1;
  }

  /** True for the one caller that starts a refusing episode (it logs it). */
  startRefusing(): boolean {
    return Atomics.compareExchange(this.#i32, REFUSING, 0, 1) === 0;
  }

  /** True for the one caller that ends it. */
  stopRefusing(): boolean {
    return Atomics.compareExchange(this.#i32, REFUSING, 1, 0) === 1;
  }

  /** ms since the listener's epoch, the same clock in every thread. */
  now(): number {
    return performance.timeOrigin + performance.now() - this.#epoch;
  }

  /** The log-budget slot of `kind`, claimed on first use; undefined if all are taken. */
  logSlot(kind: string): LogSlot | undefined {
    const h = hash(kind);
    for (let k = 0; k < LOG_SLOTS; k++) {
      const i = (h + k) % LOG_SLOTS;
      const was = Atomics.compareExchange(this.#i32, HASH + i, 0, h);
      if (was === 0 || was === h) return new LogSlot(this.#i32, this.#i64, i);
    }
    return undefined;
  }
}

/** One kind's budget: lines logged and suppressed in the current window, shared by the workers. */
export class LogSlot {
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
  readonly i: number;
  constructor(i32: Int32Array, i64: BigInt64Array, i: number) {
    this.i32 = i32;
    this.i64 = i64;
    this.i = i;
  }
  get windowStart(): number {
    return Number(Atomics.load(this.i64, this.i));
  }
  /** True for the one caller that moves the window on from `seen` (it then flushes the count). */
  roll(seen: number, now: number): boolean {
    if (Atomics.compareExchange(this.i64, this.i, BigInt(seen), BigInt(Math.floor(now))) !== BigInt(seen)) return false;
    Atomics.store(this.i32, LOGGED + this.i, 0);
    return true;
  }
  /** True if a line may be logged in this window. */
  take(burst: number): boolean {
    if (Atomics.add(this.i32, LOGGED + this.i, 1) < burst) return true;
    Atomics.add(this.i32, SUPPRESSED + this.i, 1);
    return false;
  }
  /** The suppressed count, reset: only one caller gets a given line's share. */
  takeSuppressed(): number {
    return Atomics.exchange(this.i32, SUPPRESSED + this.i, 0);
  }
}

/** The init's thread, when a worker is gone without giving its connections back: returns them. */
export function releaseWorkerSlot(limits: SharedLimits, slot: number): number {
  const i32 = new Int32Array(limits.buffer, 0, INT32S);
  const held = Atomics.exchange(i32, WORKER + slot, 0);
  if (held > 0) Atomics.sub(i32, OPEN, held);
  return held;
}

/** FNV-1a, never 0 (0 marks a free slot). */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 1) | 1;
}

// The servers this thread accepts on, so that a faulted worker can stop accepting without
// ending the connections it holds (worker.ts, 'drain').
const servers = new Set<Server>();

/** Every listening server of a listener registers here once bound. */
export function accepting(server: Server): void {
  servers.add(server);
  server.once('close', () => servers.delete(server));
}

/** Stops accepting on every server of this thread; resolves once their connections have all closed. */
export function stopAccepting(): Promise<void> {
  return Promise.all([...servers].map((s) => new Promise<void>((resolve) => {
    if (!s.listening) return resolve();
    s.close(() => resolve());
  }))).then(() => undefined);
}
