// One process unit: spawn, readiness, restarts with backoff, its own stop signal and grace.
// The runner (./runner.ts) decides the order and the exit status; this only reports.
import { setTimeout as sleep } from 'node:timers/promises';
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { formatDuration } from '../lib/duration.ts';
import { Child, type ChildExit } from '../supervise/child.ts';
import { signalNumber } from '../lib/signals.ts';
import { describeReady, waitReady } from './ready.ts';
import { Commands } from './command.ts';
import { reloadName } from '../render/reload.ts';
import { UnitFailure, type ProcessUnitSpec, type ReloadOutcome, type UnitEnd, type UnitState, type UnitStatus } from './types.ts';

export interface UnitContext {
  /** Bound with `{ unit: name }`. */
  log: Log;
  signalGroup: boolean;
  /** Pids Node waits for itself (children and exec checks), shared with the reaper. */
  owned: Set<number>;
  /** A failure after the start (not ready again in time after a restart): the runner stops everything. */
  fail(failure: UnitFailure): void;
}

/** Settles once; later calls are ignored. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // a start nobody awaits any more must not become an unhandled rejection
  return {
    promise,
    get settled() {
      return settled;
    },
    resolve: (v: T) => (settled ? undefined : ((settled = true), resolve(v))),
    reject: (e: unknown) => (settled ? undefined : ((settled = true), reject(e))),
  };
}

export class ProcessUnit {
  readonly spec: ProcessUnitSpec;
  readonly #ctx: UnitContext;
  readonly #log: Log;
  readonly #field: string;
  /** Its name in the log lines: `single` (run:, COMMAND) keeps tini's "child". */
  readonly #say: string;
  #state: UnitState = 'waiting';
  #restarts = 0;
  #exitStatus: number | undefined;
  #child: Child | undefined;
  #started = false;
  #stopSignal: NodeJS.Signals | undefined;
  /** A restart asked by a reload: the exit that follows is planned, not a failure. */
  #reloadRestart: ReturnType<typeof deferred<void>> | undefined;
  readonly #stop = new AbortController();
  readonly #ready = deferred<void>();
  readonly #ended = deferred<UnitEnd>();
  /** Its exec readiness checks and reloads: stopped with it, and waited for. */
  readonly #commands: Commands;

  constructor(spec: ProcessUnitSpec, ctx: UnitContext) {
    this.spec = spec;
    this.#ctx = ctx;
    this.#log = ctx.log;
    this.#field = spec.field ?? `processes.${spec.name}`;
    this.#say = spec.single ? 'child' : spec.name;
    this.#commands = new Commands({ child: spec.child, owned: ctx.owned, log: ctx.log, stop: this.#stop.signal, graceMs: spec.gracePeriodMs });
  }

  get name(): string {
    return this.spec.name;
  }

  get after(): readonly string[] {
    return this.spec.after;
  }

  /** Resolves when the unit has ended for good (restarts do not end it). */
  get ended(): Promise<UnitEnd> {
    return this.#ended.promise;
  }

  /** Starts it; resolves once ready (a oneshot: once it exited 0), rejects with a UnitFailure. */
  start(): Promise<void> {
    if (!this.#started && !this.#stop.signal.aborted) {
      this.#started = true;
      void this.#loop();
    }
    return this.#ready.promise;
  }

  /** Passes a forwarded signal on, unless the unit narrowed its signals. */
  forward(signal: NodeJS.Signals): void {
    if (this.spec.signals && !this.spec.signals.has(signal)) return void this.#log.debug({ signal }, `${signal} not forwarded: ${this.#field}.signals leaves it out`);
    if (this.#child?.alive) this.#child.deliver(signal, false);
  }

  /**
   * Applies rotated secrets its way (spec.reload): a signal, a command that must exit 0, or a
   * restart (stop signal, grace period, started again, awaited ready). Only a ready program is
   * reloaded: one still starting, restarting or finished reads the new files when it starts.
   */
  async reload(): Promise<ReloadOutcome> {
    const how = reloadName(this.spec.reload);
    const out = { unit: this.spec.name, how };
    const child = this.#child;
    if (this.spec.reload === 'none') return { ...out, result: 'skipped', why: 'reload: none' };
    if (this.#state !== 'ready' || !child?.alive || this.#stop.signal.aborted) return { ...out, result: 'skipped', why: `not running (${this.#state})` };
    const r = this.spec.reload;
    if (r === 'restart') {
      const restarted = (this.#reloadRestart = deferred<void>());
      this.#state = 'restarting';
      this.#sendStop(child, this.spec.stopSignal ?? 'SIGTERM', `restarting ${this.spec.single ? 'the child' : this.spec.name} for rotated secrets`);
      try {
        await restarted.promise;
        return { ...out, result: 'done' };
      } catch (err) {
        return { ...out, result: 'failed', why: (err as Error).message };
      }
    }
    if ('signal' in r) {
      child.deliver(r.signal, false);
      return { ...out, result: 'done' };
    }
    const why = await this.#commands.run(r.exec, r.timeoutMs);
    return why === undefined ? { ...out, result: 'done' } : { ...out, result: 'failed', why: `${r.exec[0]}: ${why}` };
  }

  /**
   * Its stop signal (or `signal`, what asked the init to stop), SIGKILL after the grace period;
   * its running commands SIGTERM, the same. Resolves once it and every command have exited.
   * `outside`: a signal to the init asked for the stop (the log line says it was forwarded).
   */
  async stop(signal: NodeJS.Signals, outside = false): Promise<void> {
    if (!this.#stop.signal.aborted) {
      this.#stopSignal = this.#stopSignalFor(signal);
      this.#stop.abort(new Error('stopping'));
      if (!this.#started) {
        this.#state = 'done';
        this.#ready.reject(this.#stop.signal.reason);
        // run: stopped by a signal before it could start: the init ends as if it had died of it (tini's 128+N).
        const status = this.spec.single && outside ? 128 + signalNumber(signal) : 0;
        if (status !== 0) this.#log.info({ signal }, `${signal} before the child started: it is not started`);
        this.#ended.resolve({ status, decides: status !== 0 });
      } else this.#signalStop(outside ? signal : undefined);
    }
    await this.#ended.promise;
    await this.#commands.settled();
  }

  /**
   * A stop signal while stopping: the one program of run: gets it too (tini forwards every
   * signal; the grace period already runs). Other units keep to the ordered stop.
   */
  again(signal: NodeJS.Signals): void {
    const child = this.#child;
    if (!this.spec.single || !this.#stop.signal.aborted || !child?.alive) return;
    child.deliver(this.#stopSignalFor(signal), true);
  }

  /** dumb-init's rewrite: for run: only SIGTERM becomes the stop signal; a process's stopSignal replaces both. */
  #stopSignalFor(signal: NodeJS.Signals): NodeJS.Signals {
    if (this.spec.single && signal !== 'SIGTERM') return signal;
    return this.spec.stopSignal ?? signal;
  }

  status(): UnitStatus {
    const child = this.#child;
    return {
      name: this.spec.name,
      kind: this.spec.oneshot ? 'oneshot' : 'process',
      state: this.#state,
      ready: this.#state === 'ready' || (this.spec.oneshot && this.#state === 'done' && this.#exitStatus === 0),
      pid: child?.alive ? child.pid : undefined,
      restarts: this.#restarts,
      exitStatus: this.#exitStatus,
    };
  }

  /** `received`: the signal to the init that asked for it, if one did. */
  #signalStop(received?: NodeJS.Signals): void {
    const child = this.#child;
    if (!child?.alive) return;
    this.#state = 'stopping';
    const doing = this.spec.single ? 'stopping the child' : `stopping ${this.spec.name}`;
    this.#sendStop(child, this.#stopSignal!, received ? `${received} forwarded: ${doing}` : doing);
  }

  /** `signal` now, SIGKILL after the grace period; `doing` says why in the log line. */
  #sendStop(child: Child, signal: NodeJS.Signals, doing: string): void {
    this.#log.info({ signal, pid: child.pid, gracePeriodMs: this.spec.gracePeriodMs }, `${doing} with ${signal}; SIGKILL after ${formatDuration(this.spec.gracePeriodMs)}`);
    child.deliver(signal, true);
    child.armKill(this.spec.gracePeriodMs);
  }

  #end(status: number, decides: boolean, failure?: string): void {
    this.#state = status === 0 || this.#stop.signal.aborted ? 'done' : 'failed';
    this.#reloadRestart?.reject(new Error(failure ?? 'it ended'));
    if (failure !== undefined) this.#ready.reject(new UnitFailure(status, failure));
    else this.#ready.reject(this.#stop.signal.reason ?? new Error('ended'));
    this.#ended.resolve({ status, decides, failure });
  }

  async #loop(): Promise<void> {
    const { spec } = this;
    for (;;) {
      this.#state = 'starting';
      let child: Child;
      try {
        child = await Child.spawn(spec.child, { log: this.#log, signalGroup: this.#ctx.signalGroup });
      } catch (err) {
        const status = err instanceof InitError ? err.exitCode : EXIT.software;
        return this.#end(status, true, `${this.#field}: ${(err as Error).message}`);
      }
      this.#child = child;
      this.#ctx.owned.add(child.pid);
      this.#log.info({ pid: child.pid, command: spec.child.argv, restarts: this.#restarts }, `${this.#say} started`);
      if (this.#stop.signal.aborted) this.#signalStop(); // the stop came while it was being spawned

      if (!spec.oneshot) void this.#awaitReady(child);
      const exit = await child.exit;
      this.#ctx.owned.delete(child.pid);
      this.#exitStatus = exit.status;
      this.#logExit(exit);

      if (this.#stop.signal.aborted) return this.#end(exit.status, true);
      if (this.#reloadRestart && !this.#reloadRestart.settled) continue; // a reload's restart: start it again at once
      if (spec.oneshot && exit.status === 0) {
        this.#state = 'done';
        this.#ready.resolve();
        this.#ended.resolve({ status: 0, decides: false });
        return;
      }
      const { policy, max, backoff } = spec.restart;
      const wanted = policy === 'always' || (policy === 'on-failure' && exit.status !== 0);
      if (wanted && this.#restarts < max) {
        const delayMs = Math.min(backoff.initialMs * 2 ** this.#restarts, backoff.maxMs);
        this.#restarts++;
        this.#state = 'restarting';
        this.#log.warn({ status: exit.status, restart: this.#restarts, max, delayMs }, `${spec.name} exited with status ${exit.status}: restart ${this.#restarts} of ${max} in ${delayMs} ms`);
        try {
          await sleep(delayMs, undefined, { signal: this.#stop.signal });
        } catch {
          return this.#end(exit.status, true);
        }
        continue;
      }
      if (wanted) this.#log.error({ status: exit.status, restarts: this.#restarts }, `${spec.name} gave up after ${this.#restarts} restarts`);
      // run:'s program ending once ready is the init's normal end (tini): its status, no error.
      if (spec.single && this.#ready.settled) return this.#end(exit.status, true);
      const why = spec.oneshot
        ? `${this.#field} (oneshot) failed with status ${exit.status}${describeExit(exit)}: the units after it are not started`
        : `${this.#field} exited with status ${exit.status}${describeExit(exit)}${this.#ready.settled ? '' : ' before it was ready'}`;
      return this.#end(exit.status, true, why);
    }
  }

  /** Started = ready without a check; with one, ready once it passes (aborted by the exit or a stop). */
  async #awaitReady(child: Child): Promise<void> {
    const check = this.spec.ready;
    if (check === undefined) return this.#becameReady(undefined);
    const gone = new AbortController();
    void child.exit.then(() => gone.abort(new Error('exited')));
    const signal = AbortSignal.any([gone.signal, this.#stop.signal]);
    const t0 = performance.now();
    let why: string | undefined;
    try {
      why = await waitReady(check, { commands: this.#commands, signal });
    } catch {
      return; // it exited (the loop reports that) or the init is stopping
    }
    if (why === undefined) return this.#becameReady(Math.round(performance.now() - t0));
    const failure = new UnitFailure(
      EXIT.unavailable,
      `${this.#field}.ready: ${describeReady(check.spec)} did not pass within ${formatDuration(check.timeoutMs)} (last: ${why}); is the program listening there?`,
    );
    this.#ready.reject(failure);
    this.#reloadRestart?.reject(failure);
    this.#ctx.fail(failure);
  }

  #becameReady(ms: number | undefined): void {
    if (this.#stop.signal.aborted) return;
    this.#state = 'ready';
    // run:'s program without a check: 'child started' said it all.
    const level = this.spec.single && !this.spec.ready ? 'debug' : 'info';
    this.#log[level]({ ...(ms === undefined ? {} : { ms }), check: this.spec.ready ? describeReady(this.spec.ready.spec) : 'started' }, `${this.#say} ready`);
    this.#ready.resolve();
    this.#reloadRestart?.resolve();
  }

  #logExit(exit: ChildExit): void {
    const fields = { pid: this.#child?.pid, code: exit.code, signal: exit.signal, status: exit.status };
    const expected = this.spec.single || this.#stop.signal.aborted || (this.spec.oneshot && exit.status === 0) || (this.#reloadRestart?.settled === false);
    if (expected) this.#log.info(fields, `${this.#say} exited`);
    else this.#log.warn(fields, `${this.#say} exited`);
  }
}

function describeExit(exit: ChildExit): string {
  return exit.signal ? ` (killed by ${exit.signal})` : '';
}
