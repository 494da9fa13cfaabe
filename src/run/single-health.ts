// The health endpoint for the single process of run: (and its listeners): the same
// /healthz, /readyz and /metrics as with processes:, over a view of the Supervisor's one child.
import type { Log } from '../lib/log.ts';
import type { RunningListener } from '../proxy/start.ts';
import { startHealth, type Health } from './health.ts';
import type { UnitStatus } from './types.ts';

/** What main.ts knows about the one child and the listener, updated as they start and end. */
export interface SingleView {
  pid?: number | undefined;
  exitStatus?: number | undefined;
  listeners?: { names: string[]; running?: RunningListener[] | undefined } | undefined;
}

export function startSingleHealth(listen: string, view: SingleView, log: Log): Promise<Health> {
  const units = (): UnitStatus[] => {
    const running = view.pid !== undefined && view.exitStatus === undefined;
    const out: UnitStatus[] = [{
      name: 'run', kind: 'process', state: running ? 'ready' : view.exitStatus === undefined ? 'starting' : 'done', ready: running,
      pid: running ? view.pid : undefined, restarts: 0, exitStatus: view.exitStatus,
    }];
    for (const name of view.listeners?.names ?? []) {
      const handle = view.listeners?.running?.find((r) => r.name === name)?.handle;
      out.push({ name, kind: 'listener', state: handle ? 'ready' : 'starting', ready: handle !== undefined, pid: undefined, restarts: 0, exitStatus: undefined, stats: handle?.stats() });
    }
    return out;
  };
  return startHealth(listen, units, log);
}
