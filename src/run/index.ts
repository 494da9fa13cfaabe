// The run stage for `processes:` (loaded lazily by main.ts): the units, the PSK listener among
// them, the health endpoint; the Supervisor hands every signal to the runner.
import { PSK_UNIT, type HealthConfig } from '../config/schema-run.ts';
import type { Log } from '../log.ts';
import type { PskProxyOptions } from '../psk/index.ts';
import type { Supervisor } from '../supervise/supervisor.ts';
import { startHealth } from './health.ts';
import { pskListenerUnit } from './psk-listener.ts';
import type { ProcessPlan } from './render-units.ts';
import { Runner } from './runner.ts';
import type { UnitSpec } from './types.ts';

export { startHealth } from './health.ts';
export { startSingleHealth } from './single-health.ts';
export { pskMetrics } from './psk-listener.ts';

export interface RunUnitsInput {
  log: Log;
  supervisor: Supervisor;
  /** In start order. */
  plans: readonly ProcessPlan[];
  psk: PskProxyOptions | undefined;
  health: HealthConfig | undefined;
  /** For units without their own gracePeriod: --grace-period, else the default. */
  gracePeriodMs: number;
  signalGroup: boolean;
}

/** Runs every unit to the end; resolves with the init's exit status. */
export async function runUnits(input: RunUnitsInput): Promise<number> {
  const units: UnitSpec[] = input.plans.map((p) => ({ ...p, gracePeriodMs: p.gracePeriodMs ?? input.gracePeriodMs }));
  if (input.psk) {
    // Server mode fronts the processes: it opens after all of them (checkUnits keeps it so).
    const server = input.psk.mode === 'server';
    const unit = pskListenerUnit(PSK_UNIT, input.psk, server ? input.plans.map((p) => p.name) : []);
    if (server) units.push(unit);
    else units.unshift(unit);
  }
  const runner = new Runner({ log: input.log, units, signalGroup: input.signalGroup });
  // Before any unit starts: an endpoint that cannot listen is a boot failure with nothing started.
  const health = input.health ? await startHealth(input.health.listen, () => runner.status(), input.log) : undefined;
  let finished!: () => void;
  try {
    // Throws the abort reason when a SIGTERM/SIGINT ended the bootstrap meanwhile.
    input.supervisor.attach(runner, new Promise<void>((resolve) => (finished = resolve)));
    return await runner.run();
  } finally {
    finished?.();
    await health?.close();
  }
}
