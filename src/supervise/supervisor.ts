import { takeEarlySignals } from '../lib/early-signals.ts';
import { AbortedBySignal } from '../lib/errors.ts';
import type { Log } from '../lib/log.ts';
import { listenedSignals, STOP_SIGNALS } from '../lib/signals.ts';

export type { ChildExit, ChildSpec } from './child.ts';

export interface SupervisorOptions {
  log: Log;
}

/**
 * What runs once the bootstrap is over: the run stage's units (src/run/, run: being its one
 * unit), which take over every signal and answer for the pids they own.
 */
export interface SignalTarget {
  onSignal(signal: NodeJS.Signals): void;
  ownedPids(): ReadonlySet<number>;
  /** Stops everything as a SIGTERM from outside would. */
  stop(reason: string): void;
}

type Phase = 'bootstrap' | 'running' | 'exiting';

/**
 * The init's signal routing, whatever it runs.
 *  bootstrap: nothing runs yet. SIGTERM/SIGINT abort the bootstrap (abortSignal fires);
 *             every other signal is logged and dropped.
 *  running:   the run stage (attach()) gets every signal: it forwards them to its programs.
 *  exiting:   the units are gone; signals are ignored while the init finishes its exit.
 * Listeners are installed at construction so no signal ever meets a default action in
 * between (a default action would kill the init, or, as PID 1, silently drop the signal).
 */
export class Supervisor {
  readonly #log: Log;
  readonly #abort = new AbortController();
  #phase: Phase = 'bootstrap';
  #target: SignalTarget | undefined;

  constructor(options: SupervisorOptions) {
    this.#log = options.log;
    for (const sig of listenedSignals()) process.on(sig, this.#onSignal);
    // Signals that arrived while the init was loading: acted on now, in order, as bootstrap ones.
    for (const sig of takeEarlySignals()) this.#onSignal(sig);
  }

  /** Fires (with an AbortedBySignal reason) when SIGTERM/SIGINT arrives during bootstrap. */
  get abortSignal(): AbortSignal {
    return this.#abort.signal;
  }

  /** True while the run stage runs. */
  get running(): boolean {
    return this.#phase === 'running';
  }

  /** Pids whose exit Node waits for itself; the reaper must leave them alone. */
  ownedPids(): ReadonlySet<number> {
    return this.#target?.ownedPids() ?? new Set();
  }

  /**
   * Hands every signal from now on to `target` (the run stage). Throws the abort reason when
   * SIGTERM/SIGINT already ended the bootstrap. `done` is when its units are gone.
   */
  async attach(target: SignalTarget, done: Promise<unknown>): Promise<void> {
    if (this.#phase !== 'bootstrap') throw new Error('attach() after start');
    // A signal that reached the process before now is a bootstrap signal, even if Node has
    // not dispatched it yet (signals reach listeners on the next turn of the event loop).
    await new Promise((resolve) => setImmediate(resolve));
    if (this.#abort.signal.aborted) throw this.#abort.signal.reason;
    this.#target = target;
    this.#phase = 'running';
    void done.finally(() => {
      this.#phase = 'exiting';
    });
  }

  /** Stops the run stage as a SIGTERM from outside would (each program: its stop signal, then SIGKILL after its grace period). */
  stop(reason: string): void {
    if (this.#phase === 'running') this.#target!.stop(reason);
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
        return this.#target!.onSignal(signal);
      case 'exiting':
        this.#log.debug({ signal }, `${signal} after the child exited: ignored`);
        return;
    }
  };
}
