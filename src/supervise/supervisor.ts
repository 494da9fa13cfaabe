import { takeEarlySignals } from '../early-signals.ts';
import { AbortedBySignal } from '../errors.ts';
import type { Log } from '../log.ts';
import { Child, type ChildExit, type ChildSpec } from './child.ts';
import { listenedSignals, STOP_SIGNALS } from './signals.ts';

export type { ChildExit, ChildSpec } from './child.ts';

export interface SupervisorOptions {
  log: Log;
  gracePeriodMs: number;
  /** Send forwarded signals to the child's process group rather than the child alone. */
  signalGroup: boolean;
  /** What a SIGTERM from outside (or stop()) becomes for the child (dumb-init's rewrite). Default SIGTERM. */
  stopSignal?: NodeJS.Signals | undefined;
}

/**
 * Whatever runs once the bootstrap is over: the one child (below), or the run stage's units
 * (src/run/), which takes over every signal and answers for the pids it owns.
 */
export interface SignalTarget {
  onSignal(signal: NodeJS.Signals): void;
  ownedPids(): ReadonlySet<number>;
  /** Stops everything as a SIGTERM from outside would. */
  stop(reason: string): void;
}

type Phase = 'bootstrap' | 'running' | 'exiting';

/**
 * The init's signal and child state machine.
 *  bootstrap: no child yet. SIGTERM/SIGINT abort the bootstrap (abortSignal fires);
 *             every other signal is logged and dropped.
 *  running:   every forwarded signal goes to the child; SIGTERM/SIGINT also arm a SIGKILL
 *             after the grace period (SIGTERM is sent as stopSignal when one is set).
 *             With units (attach()), the units' runner gets every signal instead.
 *  exiting:   the child is gone; signals are ignored while the init finishes its exit.
 * Listeners are installed at construction so no signal ever meets a default action in
 * between (a default action would kill the init, or, as PID 1, silently drop the signal).
 */
export class Supervisor {
  readonly #log: Log;
  /** Settable until the child is stopped: the config may set it after construction. */
  gracePeriodMs: number;
  /** Settable like gracePeriodMs: run.stopSignal applies unless --stop-signal was given. */
  stopSignal: NodeJS.Signals;
  /** run.signals: the forwarded signals (other than stops) the child gets; undefined: all. */
  signals: ReadonlySet<string> | undefined;
  readonly #signalGroup: boolean;
  readonly #abort = new AbortController();
  #phase: Phase = 'bootstrap';
  #child: Child | undefined;
  #target: SignalTarget | undefined;

  constructor(options: SupervisorOptions) {
    this.#log = options.log;
    this.gracePeriodMs = options.gracePeriodMs;
    this.stopSignal = options.stopSignal ?? 'SIGTERM';
    this.#signalGroup = options.signalGroup;
    for (const sig of listenedSignals()) process.on(sig, this.#onSignal);
    // Signals that arrived while the init was loading: acted on now, in order, as bootstrap ones.
    for (const sig of takeEarlySignals()) this.#onSignal(sig);
  }

  /** Fires (with an AbortedBySignal reason) when SIGTERM/SIGINT arrives during bootstrap. */
  get abortSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /** True while the child (or the units) exist. */
  get running(): boolean {
    return this.#phase === 'running';
  }

  /** Pids whose exit Node waits for itself; the reaper must leave them alone. */
  ownedPids(): ReadonlySet<number> {
    if (this.#target) return this.#target.ownedPids();
    const pid = this.#phase === 'running' ? this.#child?.pid : undefined;
    return new Set(pid === undefined ? [] : [pid]);
  }

  /**
   * Starts the child. Resolves with its pid once it runs; rejects with exit status 127/126
   * when the command cannot be found or executed. Signals arriving from here on are
   * delivered to the child.
   */
  async spawn(spec: ChildSpec): Promise<number> {
    if (this.#phase !== 'bootstrap') throw new Error('spawn() called twice');
    // A signal that reached the process before now is a bootstrap signal, even if Node has
    // not dispatched it yet (signals reach listeners on the next turn of the event loop).
    await new Promise((resolve) => setImmediate(resolve));
    if (this.#abort.signal.aborted) throw this.#abort.signal.reason;
    const child = await Child.spawn(spec, { log: this.#log, signalGroup: this.#signalGroup });
    this.#child = child;
    this.#phase = 'running';
    void child.exit.then(() => {
      this.#phase = 'exiting';
    });
    return child.pid;
  }

  /**
   * Hands every signal from now on to `target` (the run stage's units). Throws the abort
   * reason when SIGTERM/SIGINT already ended the bootstrap. `done` is when the units are gone.
   */
  attach(target: SignalTarget, done: Promise<unknown>): void {
    if (this.#phase !== 'bootstrap') throw new Error('attach() after start');
    if (this.#abort.signal.aborted) throw this.#abort.signal.reason;
    this.#target = target;
    this.#phase = 'running';
    void done.finally(() => {
      this.#phase = 'exiting';
    });
  }

  /** Resolves when the child has exited. */
  wait(): Promise<ChildExit> {
    if (!this.#child) throw new Error('wait() before spawn()');
    return this.#child.exit;
  }

  /** Asks the child to stop as a SIGTERM from outside would: TERM, then KILL after the grace period. */
  stop(reason: string): void {
    if (this.#phase !== 'running') return;
    if (this.#target) return this.#target.stop(reason);
    this.#log.warn({ reason }, 'stopping the child');
    this.#onSignal('SIGTERM');
  }

  /** Removes the signal listeners (tests and in-process embedding only). */
  dispose(): void {
    for (const sig of listenedSignals()) process.off(sig, this.#onSignal);
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    switch (this.#phase) {
      case 'bootstrap':
        if (STOP_SIGNALS.has(signal)) {
          if (!this.#abort.signal.aborted) {
            this.#log.info({ signal }, `${signal} before the child started: aborting bootstrap`);
            this.#abort.abort(new AbortedBySignal(signal as 'SIGINT' | 'SIGTERM'));
          }
        } else {
          this.#log.info({ signal }, `${signal} before the child started: dropped`);
        }
        return;
      case 'running':
        if (this.#target) return this.#target.onSignal(signal);
        this.#toChild(signal);
        return;
      case 'exiting':
        this.#log.debug({ signal }, `${signal} after the child exited: ignored`);
        return;
    }
  };

  #toChild(signal: NodeJS.Signals): void {
    const child = this.#child!;
    const stopping = STOP_SIGNALS.has(signal);
    if (!stopping && this.signals && !this.signals.has(signal)) {
      this.#log.debug({ signal }, `${signal} not forwarded: run.signals leaves it out`);
      return;
    }
    const sent = signal === 'SIGTERM' ? this.stopSignal : signal;
    if (sent !== signal) this.#log.debug({ signal, sent }, `${signal} rewritten to ${sent} (stop signal)`);
    child.deliver(sent, stopping);
    if (stopping && child.armKill(this.gracePeriodMs)) {
      this.#log.info(
        { signal, gracePeriodMs: this.gracePeriodMs },
        `${signal} forwarded; the child gets SIGKILL if still running after ${this.gracePeriodMs} ms`,
      );
    }
  }
}
