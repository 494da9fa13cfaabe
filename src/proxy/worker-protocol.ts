// Messages between the init's thread and a listener's worker thread (./workers.ts, ./worker.ts).
import type { ListenerConfig } from '../config/schema-listeners.ts';
import type { HostPort } from './listener.ts';

export interface WorkerInit {
  name: string;
  field: string;
  /** The listener's config; after the first worker bound, `listen` carries the port it got. */
  config: ListenerConfig;
  index: number;
  logLevel: string;
}

/** Secret bytes by name, each in its own transferred buffer: the sender's copy is detached. */
export type HandedSecrets = Record<string, Uint8Array>;

export type ToWorker = { op: 'start'; secrets: HandedSecrets } | { op: 'reload'; secrets: HandedSecrets } | { op: 'close' };

export type FromWorker =
  | { op: 'started'; address: HostPort; stats: Record<string, number> }
  | { op: 'stats'; stats: Record<string, number> }
  | { op: 'reloaded' }
  | { op: 'closed'; stats: Record<string, number> }
  | { op: 'error'; message: string; exitCode: number | undefined };
