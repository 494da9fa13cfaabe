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

  constructor(init: WorkerInit, log: Log) {
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
    });
  }

  request(m: ToWorker, reply: FromWorker['op'], transfer: ArrayBuffer[] = []): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      this.#waiting.set(reply, { resolve, reject });
      this.worker.postMessage(m, transfer);
    });
  }
}

export async function startInWorkers(s: WorkerStart): Promise<ListenerHandle> {
  const level = s.log.level;
  const workers: ListenerWorker[] = [];
  const startOne = async (index: number, config: ListenerConfig): Promise<HostPort> => {
    const w = new ListenerWorker({ name: s.name, field: s.field, config, index, logLevel: level }, s.log);
    workers.push(w);
    const { secrets, transfer } = handOver(s);
    const m = await w.request({ op: 'start', secrets }, 'started', transfer);
    return (m as Extract<FromWorker, { op: 'started' }>).address;
  };
  let address: HostPort;
  try {
    // The first binds what the config says (port 0 included); the others bind the port it got.
    address = await startOne(0, s.config);
    const bound = { ...s.config, listen: formatHostPort(address) };
    await Promise.all(Array.from({ length: s.count - 1 }, (_, i) => startOne(i + 1, bound)));
  } catch (err) {
    await Promise.allSettled(workers.map((w) => w.request({ op: 'close' }, 'closed')));
    await Promise.allSettled(workers.map((w) => w.worker.terminate()));
    throw err;
  }
  s.log.info({ workers: s.count, listen: formatHostPort(address) }, 'listener serving from worker threads');

  let closing: Promise<void> | undefined;
  return {
    address,
    stats() {
      const sum: Record<string, number> = {};
      for (const w of workers) for (const [k, v] of Object.entries(w.stats)) sum[k] = (sum[k] ?? 0) + v;
      return sum;
    },
    async reload() {
      // Every worker or none: one that refuses (unusable material) rejects, and keeps its old.
      await Promise.all(workers.map((w) => {
        const { secrets, transfer } = handOver(s);
        return w.request({ op: 'reload', secrets }, 'reloaded', transfer);
      }));
    },
    close() {
      closing ??= (async () => {
        await Promise.allSettled(workers.map((w) => w.request({ op: 'close' }, 'closed')));
        await Promise.allSettled(workers.map((w) => w.worker.terminate()));
      })();
      return closing;
    },
  };
}
