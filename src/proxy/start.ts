// Starting the configured listeners beside the running program: for each, wait until what it
// fronts accepts (the program takes a moment to start), then start it through its type. All
// start together; if one fails, those already up are closed again and the failure is thrown.
// Loaded lazily by main.ts (a LAZY entry of scripts/build.mjs).
import { availableParallelism } from 'node:os';
import type { Attester } from '../attest/attester.ts';
import type { TokenSources } from '../credentials/token-types.ts';
import type { Log } from '../lib/log.ts';
import type { ListenerConfig } from '../config/schema-listeners.ts';
import type { ListenerHandle } from './listener.ts';
import { READY_DEFAULTS, waitForPort } from './ready.ts';
import { tuneGcForDataPlane } from './gc-tuning.ts';
import { type AnyListenerType, listenerRuntime } from './types/index.ts';
import { startInWorkers } from './workers.ts';

const MAX_DEFAULT_WORKERS = 4;

/**
 * `workers:` if set (0 = the init's thread, where guard() is the only failure boundary), else
 * the type's default, else one per core (at most 4): a worker is a failure boundary (a bug
 * there ends its connections at most, not the init) as well as a core.
 */
export function workerCount(type: AnyListenerType, config: ListenerConfig): number {
  if (typeof config.workers === 'number') return config.workers;
  return type.defaultWorkers ?? Math.min(availableParallelism(), MAX_DEFAULT_WORKERS);
}

/** One listener as the bootstrap hands it over: plain data, so it can cross to a worker too. */
export interface PlannedListener {
  name: string;
  field: string;
  config: ListenerConfig;
}

/** What the bootstrap hands the run stage: the listeners and read access to their secrets. */
export interface ListenerSet {
  list: PlannedListener[];
  /** Secret bytes by name, as fetched (zeroed by the cleanup when the init ends). */
  secret(name: string): Buffer;
  /** Tokens for the listeners that send them (http-proxy, metadata, tunnel). */
  tokens: TokenSources;
  /** Connection-bound attestation tokens (`attest:`), and where peers' tokens are verified. */
  attester?: Attester | undefined;
  jwks?: string | undefined;
}

/**
 * Whether a listener fronts the program (it connects to it: psk/tls server modes, a tunnel
 * server) and so opens once the program accepts; otherwise the program connects through it
 * (client modes, egress proxy, metadata) and it opens before the program starts.
 */
export function frontsProgram(l: PlannedListener): boolean {
  return listenerRuntime(l.config.type).upstream(l.config) !== undefined;
}

export interface StartInput {
  listeners: readonly PlannedListener[];
  /** Secret bytes by name (the bootstrap's, wiped by its cleanup). */
  secret(name: string): Buffer;
  tokens: TokenSources;
  attester?: Attester | undefined;
  jwks?: string | undefined;
  log: Log;
  /** Aborts the waits (the program exited, or the init is stopping). */
  signal: AbortSignal;
}

export interface RunningListener {
  name: string;
  handle: ListenerHandle;
}

export async function startListeners(input: StartInput): Promise<RunningListener[]> {
  if (input.listeners.length > 0) tuneGcForDataPlane();
  const running: RunningListener[] = [];
  const started = await Promise.allSettled(
    input.listeners.map(async (l) => {
      const type = listenerRuntime(l.config.type);
      const log = input.log.child({ listener: l.name });
      const upstream = type.upstream(l.config);
      if (upstream) {
        const timeoutMs = typeof l.config.readyTimeout === 'number' ? l.config.readyTimeout : READY_DEFAULTS.timeoutMs;
        await waitForPort(upstream, log, { timeoutMs, signal: input.signal, label: l.config.type, field: `${l.field}.connect` });
      }
      const count = workerCount(type, l.config);
      const handle = count > 0
        ? await startInWorkers({ name: l.name, field: l.field, config: l.config, type, count, secret: input.secret, tokens: input.tokens, attester: input.attester, jwks: input.jwks, log })
        : await type.start(l.config, { name: l.name, field: l.field, log, secret: input.secret, tokens: input.tokens, signal: input.signal, attester: input.attester, jwks: input.jwks });
      running.push({ name: l.name, handle });
    }),
  );
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(running.map((r) => r.handle.close()));
    throw failed.reason;
  }
  return running;
}
