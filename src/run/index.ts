// The run stage's extras, loaded lazily by ./stage.ts (a LAZY entry of scripts/build.mjs) only
// when the config asks for them: listeners as units, the health endpoint, rotation. The plain
// `tee-init -- COMMAND` never loads them.
import type { Runner } from './runner.ts';
import type { Refresher, RefreshPlan } from '../refresh/refresher.ts';
import type { SignalTarget } from '../supervise/supervisor.ts';

export { startHealth } from './health.ts';
export { listenerUnits } from './listener-units.ts';
export { Refresher } from '../refresh/refresher.ts';

/**
 * A SIGHUP to the init refreshes now (refresh.onSighup) once the units are up, besides going to
 * the programs as usual (a process's signals: can leave it out).
 */
export function withRefreshOnSighup(runner: Runner, refresher: Refresher, plan: RefreshPlan): SignalTarget {
  return {
    ownedPids: () => runner.ownedPids(),
    stop: (reason) => runner.stop(reason),
    onSignal(signal) {
      runner.onSignal(signal);
      if (signal === 'SIGHUP' && plan.config.onSighup) void runner.ready.then(() => refresher.now('SIGHUP'));
    },
  };
}
