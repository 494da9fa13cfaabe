// Runs a listener in worker threads: several threads, each with its own socket on the same
// port (SO_REUSEPORT: the kernel spreads connections over them), so the data path uses every
// core the VM has and none of it runs on the init's heap or event loop. The init's thread keeps
// the handle: stats (summed, refreshed each second), reload and close go to every worker.
import { Worker } from 'node:worker_threads';
import { InitError } from '../errors.ts';
import { EXIT, type ExitCode } from '../exit-codes.ts';
import type { Log } from '../log.ts';
import { formatHostPort } from './address.ts';
import type { ListenerConfig } from '../config/schema-listeners.ts';
import type { HostPort, ListenerHandle, ListenerType } from './listener.ts';
import type { FromWorker, HandedSecrets, ToWorker, WorkerInit } from './worker-protocol.ts';

// In the bundle the worker is its own file beside this chunk; from source, the .ts module.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './proxy-worker.js', import.meta.url);

export interface WorkerStart {
  name: string;
  field: string;
  config: ListenerConfig;
  type: ListenerType<ListenerConfig>;
  count: number;
  secret(name: string): Buffer;
  log: Log;
}

/** Fresh copies of the secrets the type reads, each in its own buffer (transferred, then wiped there). */
function handOver(s: WorkerStart): { secrets: HandedSecrets; transfer: ArrayBuffer[] } {
  const secrets: HandedSecrets = {};
  const transfer: ArrayBuffer[] = [];
  for (const n of s.type.secrets(s.config)) {
    const copy = new Uint8Array(s.secret(n));
    secrets[n] = copy;
    transfer.push(copy.buffer);
  }
  return { secrets, transfer };
}

class ListenerWorker {
  readonly worker: Worker;
  stats: Record<string, number> = {};
  #waiting = new Map<string, { resolve: (m: FromWorker) => void; reject: (e: Error) => void }>();

  constructor(init: WorkerInit, log: Log, onExit: (code: number) => void) {
    this.worker = new Worker(WORKER_URL, { workerData: init, stdout: false, stderr: false });
    this.worker.on('message', (m: FromWorker) => {
      if (m.op === 'stats' || m.op === 'started' || m.op === 'closed') this.stats = m.stats;
      if (m.op === 'stats') return;
      const key = m.op === 'error' ? [...this.#waiting.keys()][0] : m.op;
      const w = key === undefined ? undefined : this.#waiting.get(key);
      if (!w) {
        if (m.op === 'error') log.error({ worker: init.index, reason: m.message }, 'listener worker error');
        return;
      }
      this.#waiting.delete(key!);
      if (m.op === 'error') w.reject(new InitError((m.exitCode ?? EXIT.software) as ExitCode, m.message));
      else w.resolve(m);
    });
    this.worker.on('error', (err) => {
      log.error({ worker: init.index, err }, `listener worker failed: ${err.message}`);
      for (const w of this.#waiting.values()) w.reject(err);
      this.#waiting.clear();
    });
    this.worker.on('exit', (code) => {
      for (const w of this.#waiting.values()) w.reject(new Error(`listener worker exited (${code})`));
      this.#waiting.clear();
      onExit(code);
    });
  }

  request(m: ToWorker, reply: FromWorker['op'], transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      this.#waiting.set(reply, { resolve, reject });
      this.worker.postMessage(m, transfer);
    });
  }
}

/** The worker threads of a running listener, for tests and diagnostics (a crash is simulated by terminating one). */
export const workerThreads = Symbol('tee-init listener worker threads');

/** A replacement for a worker that died waits this long, doubling per death in a row, at most the max. */
const RESTART_INITIAL_MS = 100;
const RESTART_MAX_MS = 30_000;
/** A replacement that serves this long resets the doubling. */
const RESTART_STABLE_MS = 60_000;

export async function startInWorkers(s: WorkerStart): Promise<ListenerHandle & { [workerThreads]: () => Worker[] }> {
  const level = s.log.level;
  const workers: (ListenerWorker | undefined)[] = [];
  let closing: Promise<void> | undefined;
  let bound = s.config;
  let restarts = 0;
  // Counters of workers that died, so that the sums never go backwards.
  const retired: Record<string, number> = {};
  const deaths = new Map<number, { inARow: number; startedAt: number }>();

  /**
   * A worker that ends without being closed (a bug, an out-of-memory) would leave its share of
   * the port dark, or all of it: it is replaced, with the current secrets, after a backoff.
   */
  const replace = (index: number, w: ListenerWorker, code: number) => {
    if (closing || workers[index] !== w) return;
    workers[index] = undefined;
    for (const [k, v] of Object.entries(w.stats)) if (k.endsWith('_total')) retired[k] = (retired[k] ?? 0) + v;
    const d = deaths.get(index) ?? { inARow: 0, startedAt: 0 };
    if (performance.now() - d.startedAt > RESTART_STABLE_MS) d.inARow = 0;
    const delayMs = Math.min(RESTART_INITIAL_MS * 2 ** d.inARow++, RESTART_MAX_MS);
    deaths.set(index, d);
    s.log.error({ worker: index, code, delayMs }, `${s.field}: a worker thread ended unexpectedly (exit ${code}); a new one starts in ${delayMs} ms`);
    setTimeout(() => {
      if (closing) return;
      d.startedAt = performance.now();
      startOne(index, bound).then(
        () => (restarts++, s.log.info({ worker: index }, `${s.field}: worker thread replaced`)),
        (err: Error) => {
          s.log.error({ worker: index, err: err.message }, `${s.field}: the replacement worker thread did not start: ${err.message}; trying again`);
          void workers[index]?.worker.terminate(); // its exit schedules the next try, later
        },
      );
    }, delayMs).unref();
  };

  const startOne = async (index: number, config: ListenerConfig): Promise<HostPort> => {
    const w: ListenerWorker = new ListenerWorker({ name: s.name, field: s.field, config, index, logLevel: level }, s.log, (code) => replace(index, w, code));
    workers[index] = w;
    const { secrets, transfer } = handOver(s);
    const m = await w.request({ op: 'start', secrets }, 'started', transfer);
    return (m as Extract<FromWorker, { op: 'started' }>).address;
  };
  const live = () => workers.filter((w): w is ListenerWorker => w !== undefined);
  const stopAll = async () => {
    await Promise.allSettled(live().map((w) => w.request({ op: 'close' }, 'closed')));
    await Promise.allSettled(live().map((w) => w.worker.terminate()));
  };
  let address: HostPort;
  try {
    // The first binds what the config says (port 0 included); the others bind the port it got.
    address = await startOne(0, s.config);
    bound = { ...s.config, listen: formatHostPort(address) };
    await Promise.all(Array.from({ length: s.count - 1 }, (_, i) => startOne(i + 1, bound)));
  } catch (err) {
    closing = stopAll();
    await closing;
    throw err;
  }
  s.log.info({ workers: s.count, listen: formatHostPort(address) }, 'listener serving from worker threads');

  return {
    address,
    stats() {
      const sum: Record<string, number> = { ...retired, worker_restarts_total: restarts };
      for (const w of live()) for (const [k, v] of Object.entries(w.stats)) sum[k] = (sum[k] ?? 0) + v;
      return sum;
    },
    async reload() {
      // Every worker or none: one that refuses (unusable material) rejects, and keeps its old.
      // A worker being replaced gets the current secrets when it starts.
      await Promise.all(live().map((w) => {
        const { secrets, transfer } = handOver(s);
        return w.request({ op: 'reload', secrets }, 'reloaded', transfer);
      }));
    },
    close() {
      closing ??= stopAll();
      return closing;
    },
    [workerThreads]: () => live().map((w) => w.worker),
  };
}
