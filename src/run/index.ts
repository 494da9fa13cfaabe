// The run stage for `processes:` (loaded lazily by main.ts): the units, the listeners among
// them, the health endpoint; the Supervisor hands every signal to the runner.
import type { HealthConfig } from '../config/schema-run.ts';
import type { Log } from '../lib/log.ts';
import type { ListenerSet } from '../proxy/start.ts';
import type { Supervisor } from '../supervise/supervisor.ts';
import { startHealth } from './health.ts';
import { listenerUnits } from './listener-units.ts';
import type { ProcessPlan } from './render-units.ts';
import { Runner } from './runner.ts';
import type { UnitSpec } from './types.ts';
import { Refresher, type RefreshPlan } from '../refresh/refresher.ts';
import type { SignalTarget } from '../supervise/supervisor.ts';

/**
 * A SIGHUP to the init refreshes now (refresh.onSighup) once the units are up, besides going to
 * the programs as usual (a process's signals: can leave it out).
 */
function withRefreshOnSighup(runner: Runner, refresher: Refresher, plan: RefreshPlan): SignalTarget {
  return {
    ownedPids: () => runner.ownedPids(),
    stop: (reason) => runner.stop(reason),
    onSignal(signal) {
      runner.onSignal(signal);
      if (signal === 'SIGHUP' && plan.config.onSighup) void runner.ready.then(() => refresher.now('SIGHUP'));
    },
  };
}

export { startHealth } from './health.ts';
export { startSingleHealth } from './single-health.ts';

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
  const units: UnitSpec[] = input.plans.map((p) => ({ ...p, gracePeriodMs: p.gracePeriodMs ?? input.gracePeriodMs }));
  if (input.listeners) {
    const { first, last } = listenerUnits(input.listeners, input.plans.map((p) => p.name), input.log);
    units.unshift(...first);
    units.push(...last);
  }
  const runner = new Runner({ log: input.log, units, signalGroup: input.signalGroup });
  const refresher = input.refresh && new Refresher({ plan: input.refresh, target: runner, log: input.log });
  // Before any unit starts: an endpoint that cannot listen is a boot failure with nothing started.
  const health = input.health ? await startHealth(input.health.listen, () => runner.status(), input.log, refresher && (() => refresher.status())) : undefined;
  let finished!: () => void;
  try {
    // Throws the abort reason when a SIGTERM/SIGINT ended the bootstrap meanwhile.
    input.supervisor.attach(refresher ? withRefreshOnSighup(runner, refresher, input.refresh!) : runner, new Promise<void>((resolve) => (finished = resolve)));
    // Rotation starts once every unit is up: a unit still starting could read the old files after the swap.
    void runner.ready.then(() => refresher?.start());
    return await runner.run();
  } finally {
    refresher?.close();
    finished?.();
    await health?.close();
  }
}
