// Messages between the init's thread and a listener's worker thread (./workers.ts, ./worker.ts).
// Every request carries an id and its answer the same id: two workers (or two reloads) can
// never have their answers crossed. Either side numbers its own requests.
import type { AttestRequest } from '../attest/attester.ts';
import type { ListenerConfig } from '../config/schema-listeners.ts';
import type { AccountInfo, Token, TokenConfig } from '../credentials/token-types.ts';
import type { HostPort } from './listener.ts';
import type { SharedLimits } from '../lib/thread.ts';

export interface WorkerInit {
  name: string;
  field: string;
  /** The listener's config; after the first worker bound, `listen` carries the port it got. */
  config: ListenerConfig;
  index: number;
  /** This worker's share of the open-connection count (src/lib/thread.ts), given back if it dies. */
  slot: number;
  logLevel: string;
  /** The listener's counters shared by all its workers (connection limit, log budget). */
  shared: SharedLimits;
  /** What tokens.account() answers, for the credentials the listener names. */
  accounts: Record<string, AccountInfo>;
  /** Why tokens.source() refuses `${kind} ${credentials}` (it throws at once, as in the init's thread). */
  tokenProblems: Record<string, string>;
  /** The init can ask the launcher for connection-bound tokens (`attest:`): ask it by message. */
  attests: boolean;
  /** endpoints.jwks, for listeners that verify a peer's attestation. */
  jwks: string | undefined;
  /** Send log lines to the init's thread instead of fd 2 (tests read them there). */
  forwardLogs: boolean;
  /**
   * The fds this worker's splice thread holds (./splice.ts): the init's thread closes those
   * still recorded when the worker is gone, however it ended.
   */
  spliceFds: SharedArrayBuffer;
}

/** Secret bytes by name, each in its own transferred buffer: the sender's copy is detached. */
export type HandedSecrets = Record<string, Uint8Array>;

export type ToWorker =
  | { op: 'start'; id: number; secrets: HandedSecrets }
  | { op: 'reload'; id: number; secrets: HandedSecrets }
  | { op: 'close'; id: number }
  /** After a fault, once the replacement serves: stop accepting, let open connections finish, exit. */
  | { op: 'drain'; drainMs: number }
  | { op: 'token'; id: number; token?: Token; error?: string }
  | { op: 'attested'; id: number; jwt?: string; error?: string }
  /** Test hook only (nothing in the init sends it): throw outside any handler, as a bug would. */
  | { op: 'inject-fault'; rejection: boolean };

export type FromWorker =
  | { op: 'started'; id: number; address: HostPort; stats: Record<string, number> }
  | { op: 'stats'; stats: Record<string, number> }
  | { op: 'reloaded'; id: number }
  | { op: 'closed'; id: number; stats: Record<string, number> }
  | { op: 'error'; id: number; message: string; exitCode: number | undefined }
  /** After 'drain': the worker's listening sockets are closed (new connections go to the others). */
  | { op: 'draining' }
  /** An uncaught exception or unhandled rejection: the worker wants a replacement. */
  | { op: 'faulted'; reason: string; stats: Record<string, number> }
  | { op: 'token'; id: number; config: TokenConfig; audience: string | undefined }
  /** A connection-bound attestation token: the init's one attester bounds the launcher VM-wide. */
  | { op: 'attest'; id: number; request: AttestRequest }
  | { op: 'log'; line: string };
