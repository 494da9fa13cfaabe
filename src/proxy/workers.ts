// Runs a listener in worker threads: several threads, each with its own socket on the same
// port (SO_REUSEPORT: the kernel spreads connections over them), so the data path uses every
// core the VM has and none of it runs on the init's heap or event loop. The init's thread keeps
// the handle: stats (summed, refreshed each second), reload and close go to every worker, and
// it answers the workers' token requests (token caches and mints stay in one place, here).
//
// A worker is also the failure boundary of the connections it serves: a throw that escapes
// every guard() in it (a bug) is reported as 'faulted'; a replacement starts at once on the same
// port, the faulted worker stops accepting, lets its open connections finish (at most DRAIN_MS)
// and exits. A worker that ends without warning (out of memory, terminated) is replaced too.
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { Attester } from '../attest/attester.ts';
import type { TokenSources } from '../credentials/token-types.ts';
import { InitError } from '../lib/errors.ts';
import { EXIT, type ExitCode } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { formatHostPort } from '../lib/address.ts';
import type { ListenerConfig } from '../config/schema-listeners.ts';
import type { HostPort, ListenerHandle, ListenerType } from './listener.ts';
import { closeRecordedFds, newSpliceFdTable } from './splice.ts';
import { createSharedLimits, releaseWorkerSlot, type SharedLimits, WORKER_SLOTS } from '../lib/thread.ts';
import type { FromWorker, HandedSecrets, ToWorker, WorkerInit } from './worker-protocol.ts';

// In the bundle the worker is its own file beside this chunk; from source, the .ts module.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './proxy-worker.js', import.meta.url);

/**
 * Each listener thread's heap (issue 19, bench/soak.ts). V8 sizes a heap for throughput and
 * grows it lazily: left alone, the init's RSS climbed from ~120 to ~260 MiB over 10 minutes of
 * refreshes with no leak behind it. A 1 MiB semi-space (young generation 3 MB) and a 64 MB old
 * generation hold a listener thread flat at no measured data-plane cost (the per-record Buffers
 * are external memory; their handles die young). A thread past its old generation fails like a
 * faulted one: replaced, its connections lost, the init unharmed.
 */
export const WORKER_HEAP = { maxYoungGenerationSizeMb: 3, maxOldGenerationSizeMb: 64 } as const;

/** How long close() waits for a worker to close its connections before terminating it. */
const WORKER_CLOSE_MS = 4_000;

/** How long a faulted worker may keep serving its open connections before it exits anyway. */
export const DRAIN_MS = 5 * 60_000;
/**
 * Faulted workers draining at once, per listener: a peer that can trigger faults must not make
 * the init hold a thread (and its heap) per fault. One more ends the oldest one's connections.
 */
export const MAX_DRAINING = 4;

export interface WorkerStart {
  name: string;
  field: string;
  config: ListenerConfig;
  type: ListenerType<ListenerConfig>;
  count: number;
  secret(name: string): Buffer;
  /** Answers the workers' token requests (types that send tokens: tunnel, http-proxy, metadata). */
  tokens?: TokenSources;
  /** Answers the workers' attestation requests (`attest:` on a tls listener). */
  attester?: Attester | undefined;
  jwks?: string | undefined;
  log: Log;
  /** Tests: the workers' log lines come here (as JSON lines) instead of going to fd 2. */
  logLine?: (line: string) => void;
  /** Tests: a shorter drain deadline for faulted workers. */
  drainMs?: number;
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

type Request = ToWorker extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;
type Reply = Extract<FromWorker, { op: 'started' | 'reloaded' | 'closed' }>;

interface WorkerHooks {
  log: Log;
  onExit(code: number): void;
  onFaulted(reason: string): void;
  onToken(m: Extract<FromWorker, { op: 'token' }>): void;
  onAttest(m: Extract<FromWorker, { op: 'attest' }>): void;
  logLine?: ((line: string) => void) | undefined;
}

class ListenerWorker {
  readonly worker: Worker;
  readonly slot: number;
  stats: Record<string, number> = {};
  /** Faulted: serving only the connections it has, until they close or the drain deadline. */
  draining = false;
  #next = 1;
  // Answers by request id: a late answer to an earlier request can never settle a later one.
  #waiting = new Map<number, { resolve: (m: Reply) => void; reject: (e: Error) => void }>();

  constructor(init: WorkerInit, hooks: WorkerHooks) {
    const { log } = hooks;
    this.slot = init.slot;
    this.worker = new Worker(WORKER_URL, { workerData: init, stdout: false, stderr: false, resourceLimits: WORKER_HEAP });
    this.worker.on('message', (m: FromWorker) => {
      switch (m.op) {
        case 'stats':
          this.stats = m.stats;
          return;
        case 'faulted':
          this.stats = m.stats;
          hooks.onFaulted(m.reason);
          return;
        case 'token':
          hooks.onToken(m);
          return;
        case 'attest':
          hooks.onAttest(m);
          return;
        case 'draining':
          log.info({ worker: init.index }, `${init.field}: the faulted worker thread ${init.index} stopped accepting; it exits once its open connections close`);
          return;
        case 'log':
          hooks.logLine?.(m.line);
          return;
        default:
      }
      if (m.op === 'started' || m.op === 'closed') this.stats = m.stats;
      const w = this.#waiting.get(m.id);
      if (!w) {
        if (m.op === 'error') log.error({ worker: init.index, reason: m.message }, 'listener worker error');
        return;
      }
      this.#waiting.delete(m.id);
      if (m.op === 'error') w.reject(new InitError((m.exitCode ?? EXIT.software) as ExitCode, m.message));
      else w.resolve(m);
    });
    this.worker.on('error', (err) => {
      log.error({ worker: init.index, err }, `listener worker failed: ${err.message}`);
      this.#fail(err);
    });
    this.worker.on('exit', (code) => {
      // Its splice thread ended with it, holding the fds of the connections it was moving.
      closeRecordedFds(init.spliceFds);
      this.#fail(new Error(`listener worker exited (${code})`));
      hooks.onExit(code);
    });
  }

  #fail(err: Error): void {
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }

  request(m: Request, transfer: ArrayBuffer[] = []): Promise<Reply> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...m, id }, transfer);
    });
  }

  post(m: ToWorker): void {
    this.worker.postMessage(m);
  }
}

/** The worker threads of a running listener, for tests and diagnostics (a crash is simulated by terminating one). */
export const workerThreads = Symbol('tee-init listener worker threads');

/** A replacement for a worker that died waits this long, doubling per death in a row, at most the max. */
const RESTART_INITIAL_MS = 100;
const RESTART_MAX_MS = 30_000;
/** A replacement that serves this long resets the doubling. */
const RESTART_STABLE_MS = 60_000;

/** What tokens.account() and the synchronous refusals of tokens.source() say, for a worker. */
function tokenFacts(s: WorkerStart): Pick<WorkerInit, 'accounts' | 'tokenProblems'> {
  const accounts: WorkerInit['accounts'] = {};
  const tokenProblems: WorkerInit['tokenProblems'] = {};
  for (const name of s.type.credentials(s.config)) {
    const a = s.tokens?.account?.(name);
    if (a) accounts[name] = a;
    for (const kind of ['id-token', 'access-token'] as const) {
      try {
        s.tokens?.source({ kind, credentials: name });
      } catch (err) {
        tokenProblems[`${kind} ${name}`] = (err as Error).message;
      }
    }
  }
  return { accounts, tokenProblems };
}

export async function startInWorkers(s: WorkerStart): Promise<ListenerHandle & { [workerThreads]: () => Worker[] }> {
  const level = s.log.level;
  const drainMs = s.drainMs ?? DRAIN_MS;
  const workers: (ListenerWorker | undefined)[] = [];
  const draining = new Set<ListenerWorker>();
  let closing: Promise<void> | undefined;
  let bound = s.config;
  let restarts = 0;
  let faults = 0;
  // Counters of workers that ended, so that the sums never go backwards.
  const retired: Record<string, number> = {};
  const deaths = new Map<number, { inARow: number; startedAt: number }>();
  const shared: SharedLimits = createSharedLimits();
  const freeSlots = Array.from({ length: WORKER_SLOTS }, (_, i) => WORKER_SLOTS - 1 - i);
  const facts = tokenFacts(s);

  /** A worker is gone: keep its counters, give back the connection slots it held. */
  const retire = (w: ListenerWorker) => {
    for (const [k, v] of Object.entries(w.stats)) if (k.endsWith('_total')) retired[k] = (retired[k] ?? 0) + v;
    if (w.slot >= 0) {
      releaseWorkerSlot(shared, w.slot);
      freeSlots.push(w.slot);
    }
  };

  const startReplacement = (index: number, done?: () => void) => {
    const d = deaths.get(index) ?? { inARow: 0, startedAt: 0 };
    d.startedAt = performance.now();
    deaths.set(index, d);
    startOne(index, bound).then(
      () => {
        restarts++;
        s.log.info({ worker: index }, `${s.field}: worker thread replaced`);
        done?.();
      },
      (err: Error) => {
        s.log.error({ worker: index, err: err.message }, `${s.field}: the replacement worker thread did not start: ${err.message}; trying again`);
        done?.();
        void workers[index]?.worker.terminate(); // its exit schedules the next try, later
      },
    );
  };

  /**
   * A worker that ends without being closed (a bug, an out-of-memory) would leave its share of
   * the port dark, or all of it: it is replaced, with the current secrets, after a backoff.
   */
  const onExit = (index: number, w: ListenerWorker, code: number) => {
    retire(w);
    if (draining.delete(w) || closing || workers[index] !== w) return;
    workers[index] = undefined;
    const d = deaths.get(index) ?? { inARow: 0, startedAt: 0 };
    if (performance.now() - d.startedAt > RESTART_STABLE_MS) d.inARow = 0;
    const delayMs = Math.min(RESTART_INITIAL_MS * 2 ** d.inARow++, RESTART_MAX_MS);
    deaths.set(index, d);
    s.log.error({ worker: index, code, delayMs }, `${s.field}: a worker thread ended unexpectedly (exit ${code}); a new one starts in ${delayMs} ms`);
    setTimeout(() => {
      if (!closing) startReplacement(index);
    }, delayMs).unref();
  };

  /** A fault escaped every guard in a worker: replace it at once, then let it drain. */
  const onFaulted = (index: number, w: ListenerWorker, reason: string) => {
    if (closing || workers[index] !== w) return;
    faults++;
    workers[index] = undefined;
    w.draining = true;
    if (draining.size >= MAX_DRAINING) {
      const oldest = draining.values().next().value!;
      s.log.error({ drainingMax: MAX_DRAINING }, `${s.field}: ${MAX_DRAINING} faulted worker threads are draining already; the oldest ends its connections now`);
      void oldest.worker.terminate();
    }
    draining.add(w);
    s.log.error(
      { worker: index, reason, open: w.stats.connections_active ?? w.stats.http_proxy_connections ?? w.stats.metadata_connections, drainMs },
      `${s.field}: a fault escaped a connection handler in worker thread ${index} (${reason}); a new thread takes the port, the faulted one finishes its open connections (at most ${drainMs / 1000}s) and exits`,
    );
    // Drain once the replacement accepts (or has failed to start): the port is never dark.
    startReplacement(index, () => w.post({ op: 'drain', drainMs }));
  };

  const onToken = (w: ListenerWorker, m: Extract<FromWorker, { op: 'token' }>) => {
    const answer = (r: { token?: { value: string; expiresAt: number }; error?: string }) => w.post({ op: 'token', id: m.id, ...r });
    if (!s.tokens) return answer({ error: 'no token sources in this init' });
    let get: Promise<{ value: string; expiresAt: number }>;
    try {
      get = s.tokens.source(m.config).get(m.audience);
    } catch (err) {
      return answer({ error: (err as Error).message });
    }
    get.then((token) => answer({ token: { value: token.value, expiresAt: token.expiresAt } }), (err: Error) => answer({ error: err.message }));
  };

  const onAttest = (w: ListenerWorker, m: Extract<FromWorker, { op: 'attest' }>) => {
    if (!s.attester) return w.post({ op: 'attested', id: m.id, error: 'no attester in this init' });
    s.attester.token(m.request).then((jwt) => w.post({ op: 'attested', id: m.id, jwt }), (err: Error) => w.post({ op: 'attested', id: m.id, error: err.message }));
  };

  const startOne = async (index: number, config: ListenerConfig): Promise<HostPort> => {
    const slot = freeSlots.pop() ?? -1;
    const init: WorkerInit = { name: s.name, field: s.field, config, index, slot, logLevel: level, shared, ...facts, attests: s.attester !== undefined, jwks: s.jwks, forwardLogs: s.logLine !== undefined, spliceFds: newSpliceFdTable() };
    const w: ListenerWorker = new ListenerWorker(init, {
      log: s.log,
      logLine: s.logLine,
      onExit: (code) => onExit(index, w, code),
      onFaulted: (reason) => onFaulted(index, w, reason),
      onToken: (m) => onToken(w, m),
      onAttest: (m) => onAttest(w, m),
    });
    workers[index] = w;
    const { secrets, transfer } = handOver(s);
    const m = await w.request({ op: 'start', secrets }, transfer);
    return (m as Extract<FromWorker, { op: 'started' }>).address;
  };
  const live = () => workers.filter((w): w is ListenerWorker => w !== undefined);
  const stopAll = async () => {
    const all = [...live(), ...draining];
    // A worker whose close never settles (a connection that never reports 'close') is
    // terminated anyway after the deadline: its thread's sockets go with it.
    await Promise.allSettled(all.map((w) => Promise.race([w.request({ op: 'close' }), sleep(WORKER_CLOSE_MS, undefined, { ref: false })])));
    await Promise.allSettled(all.map((w) => w.worker.terminate()));
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
      const sum: Record<string, number> = { ...retired, worker_restarts_total: restarts, worker_faults_total: faults };
      for (const w of [...live(), ...draining]) for (const [k, v] of Object.entries(w.stats)) sum[k] = (sum[k] ?? 0) + v;
      return sum;
    },
    async reload() {
      // Every worker or none: one that refuses (unusable material) rejects, and keeps its old.
      // A worker being replaced gets the current secrets when it starts; a draining one keeps its own.
      await Promise.all(live().map((w) => {
        const { secrets, transfer } = handOver(s);
        return w.request({ op: 'reload', secrets }, transfer);
      }));
    },
    close() {
      closing ??= stopAll();
      return closing;
    },
    [workerThreads]: () => live().map((w) => w.worker),
  };
}
