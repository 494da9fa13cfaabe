// The health endpoint for the single process of run: (and its psk: listener): the same
// /healthz, /readyz and /metrics as with processes:, over a view of the Supervisor's one child.
import type { Log } from '../log.ts';
import type { PskProxy } from '../psk/index.ts';
import { startHealth, type Health } from './health.ts';
import { pskMetrics } from './psk-listener.ts';
import type { UnitStatus } from './types.ts';

/** What main.ts knows about the one child and the listener, updated as they start and end. */
export interface SingleView {
  pid?: number | undefined;
  exitStatus?: number | undefined;
  psk?: { wanted: boolean; proxy?: PskProxy | undefined };
}

export function startSingleHealth(listen: string, view: SingleView, log: Log): Promise<Health> {
  const units = (): UnitStatus[] => {
    const running = view.pid !== undefined && view.exitStatus === undefined;
    const out: UnitStatus[] = [{
      name: 'run', kind: 'process', state: running ? 'ready' : view.exitStatus === undefined ? 'starting' : 'done', ready: running,
      pid: running ? view.pid : undefined, restarts: 0, exitStatus: view.exitStatus,
    }];
    if (view.psk?.wanted) {
      const proxy = view.psk.proxy;
      out.push({ name: 'psk', kind: 'listener', state: proxy ? 'ready' : 'starting', ready: proxy !== undefined, pid: undefined, restarts: 0, exitStatus: undefined, stats: proxy ? pskMetrics(proxy.stats()) : undefined });
    }
    return out;
  };
  return startHealth(listen, units, log);
}
