// The run stage (docs/design.md, "Supervision"): whatever the init runs, run: (or COMMAND) as
// the one unit `run`, or processes:, goes through the Runner; the Supervisor hands it every
// signal. On the start path of the plain init (in dist/tee-init.js itself): listeners, health
// and rotation come from ./index.ts, loaded only when configured.
import type { HealthConfig } from '../config/schema-run.ts';
import type { Log } from '../lib/log.ts';
import type { ListenerSet } from '../proxy/start.ts';
import type { RefreshPlan } from '../refresh/refresher.ts';
import type { Supervisor } from '../supervise/supervisor.ts';
import type { ProcessPlan } from './render-units.ts';
import { Runner } from './runner.ts';
import type { UnitSpec } from './types.ts';

export interface RunUnitsInput {
  log: Log;
  supervisor: Supervisor;
  /** In start order. */
  plans: readonly ProcessPlan[];
  listeners: ListenerSet | undefined;
  health: HealthConfig | undefined;
  /** For units without their own gracePeriod: --grace-period, else the default. */
  gracePeriodMs: number;
  signalGroup: boolean;
  /** Rotation (refresh:), when configured. */
  refresh?: RefreshPlan | undefined;
}

/** Runs every unit to the end; resolves with the init's exit status. */
export async function runUnits(input: RunUnitsInput): Promise<number> {
  const extras = input.listeners || input.health || input.refresh ? await import('./index.ts') : undefined;
  const units: UnitSpec[] = input.plans.map((p) => ({ ...p, gracePeriodMs: p.gracePeriodMs ?? input.gracePeriodMs }));
  if (input.listeners) {
    const { first, last } = extras!.listenerUnits(input.listeners, input.plans.map((p) => p.name), input.log);
    // run:'s program connects through those opening first (egress, metadata, client modes): it
    // starts once they are ready. processes: say so in their after: lists.
    for (const [i, u] of units.entries()) if (u.kind === 'process' && u.single) units[i] = { ...u, after: [...u.after, ...first.map((f) => f.name)] };
    units.unshift(...first);
    units.push(...last);
  }
  const runner = new Runner({ log: input.log, units, signalGroup: input.signalGroup });
  const refresher = input.refresh && new extras!.Refresher({ plan: input.refresh, target: runner, log: input.log });
  // Before any unit starts: an endpoint that cannot listen is a boot failure with nothing started.
  const health = input.health ? await extras!.startHealth(input.health.listen, () => runner.status(), input.log, refresher && (() => refresher.status())) : undefined;
  let finished!: () => void;
  try {
    const target = refresher ? extras!.withRefreshOnSighup(runner, refresher, input.refresh!) : runner;
    // Throws the abort reason when a SIGTERM/SIGINT ended the bootstrap meanwhile.
    await input.supervisor.attach(target, new Promise<void>((resolve) => (finished = resolve)));
    // Rotation starts once every unit is up: a unit still starting could read the old files after the swap.
    void runner.ready.then(() => refresher?.start());
    return await runner.run();
  } finally {
    refresher?.close();
    finished?.();
    await health?.close();
  }
}
