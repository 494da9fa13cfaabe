// start() of the types that may run in a worker thread (`workerSafe` in ./index.ts), without
// their schemas: a worker loads only what serves connections, not zod and the config schemas.
import type { ListenerEnv, ListenerHandle } from '../listener.ts';
import { startPsk } from './psk/start.ts';
import { startTls } from './tls/start.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each start checks its own config type
export const WORKER_STARTS: Readonly<Record<string, (config: any, env: ListenerEnv) => Promise<ListenerHandle>>> = {
  psk: startPsk,
  tls: startTls,
};
