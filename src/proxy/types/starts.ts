// start() of each listener type for a worker thread, loaded on demand: a worker loads only what
// serves connections, not zod and the config schemas (src/config/listeners/: the init's thread
// has checked the config already).
import type { ListenerEnv, ListenerHandle } from '../listener.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each start checks its own config type
type Start = (config: any, env: ListenerEnv) => Promise<ListenerHandle>;

export const WORKER_STARTS: Readonly<Record<string, () => Promise<Start>>> = {
  psk: async () => (await import('./psk/start.ts')).startPsk,
  tls: async () => (await import('./tls/start.ts')).startTls,
  tunnel: async () => (await import('./tunnel/start.ts')).tunnelRuntime.start,
  'http-proxy': async () => (await import('./http-proxy/start.ts')).httpProxyRuntime.start,
  metadata: async () => (await import('./metadata/start.ts')).metadataRuntime.start,
};
