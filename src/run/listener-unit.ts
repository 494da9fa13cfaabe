// An in-process listener as a unit: started by whatever the listener engine provides (a start
// function returning a ListenerHandle, src/proxy/listener.ts); ready once that resolves, which
// for a listener means bound and its upstream accepting. Closing it at the init's stop does not
// decide the exit status; failing to start does, with the listener's own exit code.
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import type { ListenerHandle } from '../proxy/listener.ts';
import { UnitFailure, type ListenerUnitSpec, type ReloadOutcome, type UnitEnd, type UnitState, type UnitStatus } from './types.ts';

/**
 * How long the init's stop waits for a listener to close. close() destroys every connection at
 * once and normally settles in milliseconds; a socket that never reports 'close' (seen once,
 * under heavy load, with worker threads) must not keep PID 1 from its wipe and exit status: the
 * process's exit closes whatever is left.
 */
export const LISTENER_CLOSE_MS = 5_000;

export class ListenerUnit {
  readonly spec: ListenerUnitSpec;
  readonly #log: Log;
  #state: UnitState = 'waiting';
  #handle: ListenerHandle | undefined;
  #starting: Promise<void> | undefined;
  readonly #stop = new AbortController();
  #end!: (e: UnitEnd) => void;
  readonly ended: Promise<UnitEnd> = new Promise((resolve) => (this.#end = resolve));

  constructor(spec: ListenerUnitSpec, log: Log) {
    this.spec = spec;
    this.#log = log;
  }

  get name(): string {
    return this.spec.name;
  }

  get after(): readonly string[] {
    return this.spec.after;
  }

  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    this.#state = 'starting';
    try {
      this.#handle = await this.spec.start(this.#stop.signal);
    } catch (err) {
      if (this.#stop.signal.aborted) throw err;
      this.#state = 'failed';
      const status = err instanceof InitError ? err.exitCode : EXIT.software;
      const failure = `${this.spec.name}: ${(err as Error).message}`;
      this.#end({ status, decides: true, failure });
      throw new UnitFailure(status, failure);
    }
    if (this.#stop.signal.aborted) {
      await this.#close(this.#handle);
      throw this.#stop.signal.reason;
    }
    this.#state = 'ready';
    this.#log.info({ address: this.#handle.address }, `${this.spec.name} ready`);
  }

  /** Rotation: new connections get the new material, open ones keep theirs (ListenerHandle.reload). */
  async reload(): Promise<ReloadOutcome> {
    const out = { unit: this.spec.name, how: 'listener' };
    if (this.#state !== 'ready' || !this.#handle) return { ...out, result: 'skipped', why: `not running (${this.#state})` };
    try {
      await this.#handle.reload();
      return { ...out, result: 'done' };
    } catch (err) {
      return { ...out, result: 'failed', why: (err as Error).message };
    }
  }

  /** Signals are for processes; a listener has nothing to pass them to. */
  forward(): void {}

  async stop(): Promise<void> {
    if (!this.#stop.signal.aborted) {
      this.#stop.abort(new Error('stopping'));
      const failed = this.#state === 'failed';
      if (!failed) this.#state = 'stopping';
      await this.#starting?.catch(() => {});
      if (this.#handle) await this.#close(this.#handle);
      if (!failed) this.#state = 'done';
      this.#end({ status: 0, decides: false });
    }
    await this.ended;
  }

  async #close(handle: ListenerHandle): Promise<void> {
    const ms = this.spec.closeDeadlineMs ?? LISTENER_CLOSE_MS;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, ms, 'late')));
    const closed = handle.close().then(
      () => 'closed' as const,
      (err: Error) => (this.#log.warn({ reason: err.message }, `${this.spec.name}: closing failed: ${err.message}`), 'closed' as const),
    );
    const how = await Promise.race([closed, late]);
    clearTimeout(timer);
    if (how === 'late') this.#log.warn(`${this.spec.name}: not closed within ${ms} ms (a connection that never ended); the init goes on stopping, and its exit closes what is left`);
    else this.#log.info(`${this.spec.name} closed`);
  }

  status(): UnitStatus {
    return {
      name: this.spec.name,
      kind: 'listener',
      state: this.#state,
      ready: this.#state === 'ready',
      pid: undefined,
      restarts: 0,
      exitStatus: undefined,
      stats: this.#handle?.stats(),
    };
  }
}
