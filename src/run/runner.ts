// The run stage (docs/operations.md, "Several programs: units"): start the units in dependency order, each
// once everything it is after is ready; apply the exit rule; stop in reverse order; route signals.
//  Exit rule: the init's status is that of the first unit to end that is neither a finished
//  oneshot nor restarting (a listener that fails to start counts, with its own exit code; one
//  closed by the stop does not); a unit that cannot start (not ready in time, a failing
//  oneshot, a process gone before it was ready) decides the same way. Then every other unit is
//  stopped in reverse start order, each with its stop signal and grace period.
//  Signals: SIGTERM/SIGINT start the ordered stop; every other one goes to every running process
//  (unless a unit narrows its signals). The one program of run: (a `single` unit) also gets a
//  stop signal that comes while stopping, as tini forwards every signal.
import type { Log } from '../lib/log.ts';
import { STOP_SIGNALS } from '../lib/signals.ts';
import type { SignalTarget } from '../supervise/supervisor.ts';
import { ListenerUnit } from './listener-unit.ts';
import { ProcessUnit } from './process-unit.ts';
import { UnitFailure, type ReloadOutcome, type UnitSpec, type UnitStatus } from './types.ts';

export interface RunnerOptions {
  log: Log;
  /** In start order (src/run/order.ts). */
  units: readonly UnitSpec[];
  signalGroup: boolean;
}

type Unit = ProcessUnit | ListenerUnit;

export class Runner implements SignalTarget {
  readonly #log: Log;
  readonly #units: Unit[];
  readonly #owned = new Set<number>();
  #status: number | undefined;
  #stopping: Promise<void> | undefined;
  #allReady!: () => void;
  /** Resolves once every unit is ready (never, if one fails first). */
  readonly ready: Promise<void> = new Promise((resolve) => (this.#allReady = resolve));

  constructor(options: RunnerOptions) {
    this.#log = options.log;
    this.#units = options.units.map((spec) => {
      const log = options.log.child({ unit: spec.name });
      if (spec.kind === 'listener') return new ListenerUnit(spec, log);
      return new ProcessUnit(spec, { log, signalGroup: options.signalGroup, owned: this.#owned, fail: (f) => this.#failed(spec.name, f) });
    });
  }

  /** Runs every unit to its end; resolves with the init's exit status. */
  async run(): Promise<number> {
    const t0 = Date.now(); // not performance.now(): its first use loads perf_hooks, ~1 ms of the plain init's start
    const ready = new Map<string, Promise<void>>();
    for (const unit of this.#units) {
      const started = (async () => {
        await Promise.all(unit.after.map((name) => ready.get(name)));
        if (this.#stopping !== undefined) throw new Error('stopping');
        await unit.start();
      })();
      started.catch((err: unknown) => {
        if (err instanceof UnitFailure) this.#failed(unit.name, err);
      });
      ready.set(unit.name, started);
      void unit.ended.then((end) => {
        if (end.failure !== undefined) this.#decide(unit.name, end.status, end.failure, true);
        else if (end.decides) this.#decide(unit.name, end.status, `${unit.name} ended with status ${end.status}${this.#units.length > 1 ? ': stopping the other units' : ''}`);
      });
    }
    Promise.all(ready.values()).then(
      () => {
        this.#log.info({ units: this.#units.map((u) => u.name), ms: Date.now() - t0 }, 'all units ready');
        this.#allReady();
      },
      () => {},
    );
    await Promise.all(this.#units.map((u) => u.ended));
    // Also when they all ended on their own: a unit's stop waits for the commands it runs
    // beside its program (exec checks, reloads), and nothing the init started may outlive it.
    this.#stopAll('SIGTERM');
    await this.#stopping;
    return this.#status ?? 0;
  }

  onSignal(signal: NodeJS.Signals): void {
    if (STOP_SIGNALS.has(signal)) {
      if (this.#stopping !== undefined) {
        this.#log.debug({ signal }, `${signal} while stopping: the grace periods apply`);
        for (const unit of this.#units) if (unit instanceof ProcessUnit) unit.again(signal);
        return;
      }
      this.#log.info({ signal }, `${signal}: stopping the units in reverse order`);
      this.#stopAll(signal, true);
      return;
    }
    for (const unit of this.#units) unit.forward(signal);
  }

  ownedPids(): ReadonlySet<number> {
    return this.#owned;
  }

  stop(reason: string): void {
    this.#log.warn({ reason }, 'stopping every unit');
    this.#stopAll('SIGTERM');
  }

  /**
   * Rotation: reloads, one at a time in start order (so restarts happen in order), every unit
   * that reads one of the `changed` secrets.
   */
  async reload(changed: ReadonlySet<string>): Promise<ReloadOutcome[]> {
    const outcomes: ReloadOutcome[] = [];
    for (const unit of this.#units) {
      if (this.#stopping !== undefined) break;
      if (unit.spec.secrets.some((s) => changed.has(s))) outcomes.push(await unit.reload());
    }
    return outcomes;
  }

  /** Something beside the units failed for good (refresh past maxStale): stop them, exit with `status`. */
  fail(what: string, status: number, message: string): void {
    this.#decide(what, status, message, true);
  }

  status(): UnitStatus[] {
    return this.#units.map((u) => u.status());
  }

  #failed(unit: string, failure: UnitFailure): void {
    this.#decide(unit, failure.status, failure.message, true);
  }

  /** The first to come decides the status; any of them starts the ordered stop. */
  #decide(unit: string, status: number, message: string, error = false): void {
    if (this.#status === undefined) {
      this.#status = status;
      if (error) this.#log.error({ unit, exitCode: status }, message);
      else this.#log.info({ unit, status }, message);
    }
    this.#stopAll('SIGTERM');
  }

  /** `outside`: a signal to the init asked for it (not an exit, a failure or stop()). */
  #stopAll(signal: NodeJS.Signals, outside = false): void {
    this.#stopping ??= (async () => {
      for (const unit of [...this.#units].reverse()) await unit.stop(signal, outside);
    })();
  }
}
