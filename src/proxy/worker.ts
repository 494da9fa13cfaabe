// A listener's data path in a worker thread: its own heap (the bootstrap's config, schema and
// Google clients are not in it, so bulk traffic does not pay for marking them) and its own
// event loop, on its own core. Started by ./workers.ts with the listener's config and the
// secret bytes it needs, by message; the copies are wiped once the listener holds its own.
import { parentPort, workerData } from 'node:worker_threads';
import { createLog, type LogLevel } from '../log.ts';
import type { ListenerHandle } from './listener.ts';
import { WORKER_STARTS } from './types/starts.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const log = createLog({ level: init.logLevel as LogLevel }).child({ listener: init.name, worker: init.index });
const post = (m: FromWorker) => port.postMessage(m);
const start = WORKER_STARTS[init.config.type];
const controller = new AbortController();
let handle: ListenerHandle | undefined;
let timer: NodeJS.Timeout | undefined;

// What env.secret() reads: the bytes of the message being handled (start or reload), wiped after.
let current: Record<string, Uint8Array> = {};
const secret = (name: string): Buffer => {
  const v = current[name];
  if (!v) throw new Error(`secret ${JSON.stringify(name)} was not handed to the worker`);
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
};

async function withSecrets<T>(secrets: Record<string, Uint8Array>, run: () => Promise<T>): Promise<T> {
  current = secrets;
  try {
    return await run();
  } finally {
    for (const v of Object.values(secrets)) v.fill(0);
    current = {};
  }
}

async function handle_(m: ToWorker): Promise<void> {
  if (m.op === 'start') {
    if (!start) throw new Error(`listener type ${init.config.type} cannot run in a worker thread`);
    handle = await withSecrets(m.secrets, () => start(init.config, {
      name: init.name, field: init.field, log, secret, signal: controller.signal, reusePort: true,
      tokens: { source: () => { throw new Error('listeners in worker threads mint no tokens'); } },
    }));
    // Counters reach the main thread once a second (and a last time at close).
    timer = setInterval(() => post({ op: 'stats', stats: handle!.stats() }), 1000);
    timer.unref();
    post({ op: 'started', address: handle.address, stats: handle.stats() });
  } else if (m.op === 'reload') {
    await withSecrets(m.secrets, () => handle!.reload());
    post({ op: 'reloaded' });
  } else {
    controller.abort();
    clearInterval(timer);
    await handle?.close();
    post({ op: 'closed', stats: handle?.stats() ?? {} });
    port.close();
  }
}

port.on('message', (m: ToWorker) => {
  handle_(m).catch((err: Error & { exitCode?: number }) => post({ op: 'error', message: err.message, exitCode: err.exitCode }));
});
