// A listener's data path in a worker thread: its own heap (the bootstrap's config, schema and
// Google clients are not in it, so bulk traffic does not pay for marking them) and its own
// event loop, on its own core. Started by ./workers.ts with the listener's config and the
// secret bytes it needs, by message; the copies are wiped once the listener holds its own.
// Tokens are asked of the init's thread by message (its caches and mints are the only ones).
import { parentPort, workerData } from 'node:worker_threads';
import type { TokenAttester } from '../attest/attester.ts';
import type { Token, TokenConfig, TokenSource, TokenSources } from '../credentials/token-types.ts';
import { heldTokens } from './worker-tokens.ts';
import { createLog, type LogLevel } from '../lib/log.ts';
import type { ListenerHandle } from './listener.ts';
import { stopAccepting, useSharedLimits } from '../lib/thread.ts';
import { WORKER_STARTS } from './types/starts.ts';
import { useSpliceFdTable } from './splice.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const init = workerData as WorkerInit;
useSpliceFdTable(init.spliceFds);
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);
useSharedLimits(init.shared, init.slot);
const sink = init.forwardLogs ? { write: (line: string) => post({ op: 'log', line }) } : undefined;
const log = createLog({ level: init.logLevel as LogLevel, ...(sink ? { sink } : {}) }).child({ listener: init.name, worker: init.index });
const controller = new AbortController();
let handle: ListenerHandle | undefined;
let timer: NodeJS.Timeout | undefined;
let faulted = false;

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

// Token requests waiting for the init's thread, by id. Each holds one connection's request,
// so the listener's connection limit bounds them.
const tokenWaits = new Map<number, { resolve: (t: Token) => void; reject: (e: Error) => void }>();
let nextToken = 1;
const tokens: TokenSources = {
  source(config: TokenConfig): TokenSource {
    // The refusals tokens.source() makes at once in the init's thread (a credential with no
    // service account has no ID token), made at once here too: the types rely on them.
    const problem = config.credentials === undefined ? undefined : init.tokenProblems[`${config.kind} ${config.credentials}`];
    if (problem !== undefined) throw new Error(problem);
    return heldTokens({
      get(audience?: string): Promise<Token> {
        const id = nextToken++;
        return new Promise((resolve, reject) => {
          tokenWaits.set(id, { resolve, reject });
          post({ op: 'token', id, config, audience });
        });
      },
    });
  },
  account: (name) => init.accounts[name],
};

// Attestation requests waiting for the init's thread (its one attester bounds the launcher).
const attestWaits = new Map<number, { resolve: (jwt: string) => void; reject: (e: Error) => void }>();
const attester: TokenAttester = {
  token(request) {
    const id = nextToken++;
    return new Promise((resolve, reject) => {
      attestWaits.set(id, { resolve, reject });
      post({ op: 'attest', id, request });
    });
  },
};

/** Where an error came from, without its message (it may hold a peer's bytes). */
function faultReason(err: unknown): string {
  if (!(err instanceof Error)) return typeof err;
  const code = (err as NodeJS.ErrnoException).code;
  const at = /\n\s+at (.*)/.exec(err.stack ?? '')?.[1];
  return `${err.name}${code ? ` ${code}` : ''}${at ? ` at ${at}` : ''}`;
}

// A throw that escaped every guard(): the connections of this thread are the blast radius at
// most, never the init. Ask for a replacement and keep serving what is open until told to drain.
function onFault(err: unknown): void {
  if (!handle) {
    // During start: the start request fails (the worker's exit rejects it).
    log.error({ reason: faultReason(err) }, 'listener worker faulted while starting');
    process.exit(70);
  }
  if (faulted) return; // already draining; one report is enough
  faulted = true;
  post({ op: 'faulted', reason: faultReason(err), stats: { ...handle.stats() } });
}
process.on('uncaughtException', onFault);
process.on('unhandledRejection', onFault);

async function drain(drainMs: number): Promise<void> {
  const deadline = new Promise<void>((resolve) => setTimeout(resolve, drainMs).unref());
  const drained = stopAccepting(); // closes the listening sockets now, resolves once connections are gone
  post({ op: 'draining' });
  await Promise.race([drained, deadline]);
  clearInterval(timer);
  await Promise.race([handle?.close(), new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref())]);
  post({ op: 'stats', stats: { ...handle?.stats() } });
  process.exit(0);
}

async function handle_(m: ToWorker): Promise<void> {
  switch (m.op) {
    case 'start': {
      const start = await WORKER_STARTS[init.config.type]?.();
      if (!start) throw new Error(`listener type ${init.config.type} cannot run in a worker thread`);
      handle = await withSecrets(m.secrets, () => start(init.config, {
        name: init.name, field: init.field, log, secret, signal: controller.signal, reusePort: true, tokens,
        attester: init.attests ? attester : undefined, jwks: init.jwks,
      }));
      // Counters reach the main thread once a second (and a last time at close).
      timer = setInterval(() => post({ op: 'stats', stats: { ...handle!.stats() } }), 1000);
      timer.unref();
      post({ op: 'started', id: m.id, address: handle.address, stats: { ...handle.stats() } });
      return;
    }
    case 'reload':
      await withSecrets(m.secrets, () => handle!.reload());
      post({ op: 'reloaded', id: m.id });
      return;
    case 'close':
      controller.abort();
      clearInterval(timer);
      await handle?.close();
      post({ op: 'closed', id: m.id, stats: { ...handle?.stats() } });
      port.close();
      return;
    case 'drain':
      await drain(m.drainMs);
      return;
    case 'token': {
      const w = tokenWaits.get(m.id);
      tokenWaits.delete(m.id);
      if (m.token) w?.resolve(m.token);
      else w?.reject(new Error(m.error ?? 'no token'));
      return;
    }
    case 'attested': {
      const w = attestWaits.get(m.id);
      attestWaits.delete(m.id);
      if (m.jwt !== undefined) w?.resolve(m.jwt);
      else w?.reject(new Error(m.error ?? 'no attestation token'));
      return;
    }
    case 'inject-fault':
      if (m.rejection) void Promise.reject(new Error('fault injected by a test'));
      else setImmediate(() => {
        throw new Error('fault injected by a test');
      });
      return;
  }
}

port.on('message', (m: ToWorker) => {
  handle_(m).catch((err: Error & { exitCode?: number }) => {
    if ('id' in m) post({ op: 'error', id: m.id, message: err.message, exitCode: err.exitCode });
    else log.error({ op: m.op, err }, 'listener worker: a message from the init failed');
  });
});
