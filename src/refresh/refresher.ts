// Rotation (docs/rotation.md `refresh:`): on a schedule (and on SIGHUP), read every secret that can
// change again, and when something did: check the new set like the boot does, write it as a new
// generation of files swapped in atomically, reload the units that read it, then wipe the old
// one. A refresh that fails changes nothing; one that keeps failing past maxStale ends the init.
import { EXIT } from '../lib/exit-codes.ts';
import { formatDuration } from '../lib/duration.ts';
import { trimHeap } from '../lib/libc.ts';
import type { RefreshConfig } from '../config/schema-refresh.ts';
import type { Log } from '../lib/log.ts';
import type { ReloadOutcome } from '../run/types.ts';
import type { SecretValue } from '../secrets/fetch.ts';
import { nextDelayMs, retryDelayMs, staleTooLong } from './schedule.ts';
import { certificateExpiry, WEEK_MS } from '../lib/pem.ts';

/** The pipeline's side of a rotation: the same stages as the boot, on a new set of values. */
export interface RefreshPlan {
  config: RefreshConfig;
  /** Secrets whose value can change (a gcp ref to latest or an alias, a file source); in config order. */
  rotating: readonly string[];
  /** The values in use, by name: what listeners read and the exit wipes. Replaced in place by a rotation. */
  current: Map<string, SecretValue>;
  /** Reads `names` again (attestation re-checked, fresh tokens, CRC32C): throws an InitError like the boot. */
  fetch(names: readonly string[], abort: AbortSignal): Promise<Map<string, SecretValue>>;
  /** Checks a complete new set like the boot (PEM pairs and dates, listener material): throws. */
  check(next: ReadonlyMap<string, SecretValue>): void | Promise<void>;
  /** Writes the new set's files as a new generation and swaps it in atomically: throws, changing nothing. */
  publish(next: ReadonlyMap<string, SecretValue>): void;
  /** Zeroes and removes the generations no longer in use. */
  retireOld(): void;
}

/** The run stage's side: who reads what, and how to give up. */
export interface RefreshTarget {
  reload(changed: ReadonlySet<string>): Promise<ReloadOutcome[]>;
  fail(what: string, status: number, message: string): void;
}

export interface SecretAge {
  name: string;
  /** When its value was last read from its source and found current (boot or refresh), ms epoch. */
  confirmedAt: number;
  /** When the value in use was installed (boot or the rotation that brought it), ms epoch. */
  installedAt: number;
  /** The version (or file) it came from. */
  origin: string;
  /** When the first certificate in it expires (ms epoch); absent for a secret without one. */
  expiresAt?: number | undefined;
}

export interface RefreshStatus {
  everyMs: number;
  /** ms epoch; undefined before the first refresh. */
  lastAt: number | undefined;
  lastResult: 'rotated' | 'unchanged' | 'failed' | undefined;
  nextAt: number | undefined;
  failuresInARow: number;
  counts: { rotated: number; unchanged: number; failed: number };
  /** Reloads that failed since boot (the files were swapped all the same). */
  reloadFailures: number;
  secrets: SecretAge[];
}

export interface RefresherOptions {
  plan: RefreshPlan;
  target: RefreshTarget;
  log: Log;
  now?: () => number;
  random?: () => number;
}

/** 37h, 5m: enough precision for an expiry warning. */
const roughly = (ms: number) => formatDuration(ms >= 3_600_000 ? Math.round(ms / 3_600_000) * 3_600_000 : Math.max(1, Math.round(ms / 60_000)) * 60_000);

export class Refresher {
  readonly #plan: RefreshPlan;
  readonly #target: RefreshTarget;
  readonly #log: Log;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #abort = new AbortController();
  readonly #ages = new Map<string, SecretAge>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #lastGoodAt: number;
  #status: Omit<RefreshStatus, 'secrets' | 'everyMs'> = { lastAt: undefined, lastResult: undefined, nextAt: undefined, failuresInARow: 0, counts: { rotated: 0, unchanged: 0, failed: 0 }, reloadFailures: 0 };

  constructor(options: RefresherOptions) {
    this.#plan = options.plan;
    this.#target = options.target;
    this.#log = options.log.child({ stage: 'refresh' });
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#lastGoodAt = this.#now(); // the boot's read
    for (const [name, v] of this.#plan.current) this.#ages.set(name, { name, confirmedAt: this.#lastGoodAt, installedAt: this.#lastGoodAt, origin: v.origin, expiresAt: certificateExpiry(name, v.data) });
  }

  /** Schedules the first refresh (`every` after the boot's read, less jitter). */
  start(): void {
    const { rotating, config } = this.#plan;
    if (rotating.length === 0) {
      this.#log.warn('refresh: every secret is pinned to a version (or there are none): nothing can change, no refresh is scheduled');
      return;
    }
    this.#log.info({ secrets: rotating, every: formatDuration(config.every), maxStale: config.maxStale && formatDuration(config.maxStale) }, `refresh: ${rotating.length} secrets every ${formatDuration(config.every)}`);
    this.#schedule(nextDelayMs(config, this.#random));
  }

  /** A refresh now (SIGHUP); one already running is followed by another. Resolves when done. */
  now(reason: string): Promise<void> {
    if (this.#plan.rotating.length === 0 || this.#abort.signal.aborted) return Promise.resolve();
    this.#log.info({ reason }, `refresh now (${reason})`);
    return this.#run();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort(new Error('the init is stopping'));
  }

  status(): RefreshStatus {
    return { ...this.#status, counts: { ...this.#status.counts }, everyMs: this.#plan.config.every, secrets: [...this.#ages.values()].map((a) => ({ ...a })) };
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    if (this.#abort.signal.aborted) return;
    this.#status.nextAt = this.#now() + delayMs;
    this.#timer = setTimeout(() => void this.#run(), delayMs);
    this.#timer.unref();
  }

  #run(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#once();
      } while (this.#again && !this.#abort.signal.aborted);
    })().finally(() => {
      this.#running = undefined;
      // A pass frees its JSON bodies, TLS records and the secrets' buffers; glibc would keep the
      // pages (issue 19: ~6-8 MiB of RSS at 4 minutes of refresh every second). ~0.3 ms.
      trimHeap();
    });
    return this.#running;
  }

  async #once(): Promise<void> {
    const plan = this.#plan;
    const t0 = this.#now();
    this.#status.lastAt = t0;
    let fetched: Map<string, SecretValue> | undefined;
    let next: Map<string, SecretValue> | undefined;
    const changed = new Set<string>();
    try {
      fetched = await plan.fetch(plan.rotating, this.#abort.signal);
      for (const [name, v] of fetched) if (!v.data.equals(plan.current.get(name)!.data)) changed.add(name);
      if (changed.size > 0) {
        next = new Map(plan.current);
        for (const name of changed) next.set(name, fetched.get(name)!);
        await plan.check(next);
        plan.publish(next);
      }
    } catch (err) {
      for (const v of fetched?.values() ?? []) v.data.fill(0);
      if (this.#abort.signal.aborted) return;
      return this.#failed(err as Error);
    }
    const at = this.#now();
    this.#lastGoodAt = at;
    this.#status.failuresInARow = 0;
    for (const name of plan.rotating) {
      const age = this.#ages.get(name)!;
      age.confirmedAt = at;
      if (changed.has(name)) Object.assign(age, { installedAt: at, origin: fetched!.get(name)!.origin, expiresAt: certificateExpiry(name, fetched!.get(name)!.data) });
    }
    if (changed.size === 0) {
      for (const v of fetched!.values()) v.data.fill(0);
      this.#status.lastResult = 'unchanged';
      this.#status.counts.unchanged++;
      this.#log.info({ secrets: plan.rotating.length, ms: at - t0 }, `refresh: no secret changed (${plan.rotating.length} read in ${at - t0} ms)`);
      this.#warnExpiring(at, 'its source has no newer version');
    } else {
      await this.#install(next!, changed, fetched!, t0);
    }
    this.#schedule(nextDelayMs(plan.config, this.#random));
  }

  /** The new files are in place: hand the new values to the listeners, reload the units, wipe the old. */
  async #install(next: Map<string, SecretValue>, changed: Set<string>, fetched: Map<string, SecretValue>, t0: number): Promise<void> {
    const plan = this.#plan;
    const old = [...changed].map((name) => plan.current.get(name)!);
    for (const [name, v] of next) plan.current.set(name, v);
    for (const [name, v] of fetched) if (!changed.has(name)) v.data.fill(0); // same bytes as in use: the copy goes
    const swappedMs = this.#now() - t0;
    const outcomes = await this.#target.reload(changed);
    if (this.#abort.signal.aborted) {
      for (const v of old) v.data.fill(0);
      return; // the init is stopping: the exit's wipe takes every generation
    }
    // Only now, with every reader moved to the new files, do the old ones go.
    try {
      plan.retireOld();
    } catch (err) {
      this.#log.error({ err }, `refresh: the previous generation of files could not be wiped: ${(err as Error).message}; it is wiped at exit`);
    }
    for (const v of old) v.data.fill(0);
    this.#status.lastResult = 'rotated';
    this.#status.counts.rotated++;
    const failed = outcomes.filter((o) => o.result === 'failed');
    this.#status.reloadFailures += failed.length;
    for (const o of outcomes.filter((x) => x.result === 'skipped' && x.how === 'none')) {
      this.#log.warn({ unit: o.unit }, `refresh: ${o.unit} reads rotated secrets but has reload: none; it keeps what it read until it restarts (set reload: on it)`);
    }
    for (const f of failed) {
      this.#log.error({ unit: f.unit, reload: f.how, why: f.why }, `refresh: ${f.unit} did not reload (${f.how}: ${f.why}); it keeps the secrets it read before until it restarts`);
    }
    const versions = Object.fromEntries([...changed].map((n) => [n, next.get(n)!.origin]));
    const reloaded = outcomes.filter((o) => o.result === 'done').map((o) => `${o.unit} (${o.how})`);
    const ms = this.#now() - t0;
    this.#log.info(
      { changed: [...changed], versions, reloads: outcomes, swappedMs, ms },
      `refresh: rotated ${[...changed].join(', ')}; ${reloaded.length ? `reloaded ${reloaded.join(', ')}` : 'nothing to reload'}; ${ms} ms`,
    );
  }

  /** A certificate in use that is about to expire while rotation brings nothing new: said at every refresh. */
  #warnExpiring(now: number, why: string): void {
    for (const a of this.#ages.values()) {
      if (a.expiresAt === undefined || a.expiresAt - now >= WEEK_MS) continue;
      const when = a.expiresAt <= now ? `expired on ${new Date(a.expiresAt).toISOString()}` : `expires on ${new Date(a.expiresAt).toISOString()}, in ${roughly(a.expiresAt - now)}`;
      this.#log.warn({ secret: a.name, expiresAt: new Date(a.expiresAt).toISOString(), origin: a.origin }, `refresh: secret ${a.name}: the certificate in use ${when}, ${why}: upload a renewed one`);
    }
  }

  #failed(err: Error): void {
    const now = this.#now();
    this.#status.lastResult = 'failed';
    this.#status.counts.failed++;
    const failures = ++this.#status.failuresInARow;
    const staleMs = now - this.#lastGoodAt;
    const { maxStale } = this.#plan.config;
    if (staleTooLong(this.#plan.config, this.#lastGoodAt, now)) {
      this.close();
      this.#target.fail('refresh', EXIT.unavailable, `refresh: no good read of the secrets for ${formatDuration(staleMs)} (refresh.maxStale ${formatDuration(maxStale!)}): ${err.message}`);
      return;
    }
    let delay = retryDelayMs(this.#plan.config, failures);
    if (maxStale !== undefined) delay = Math.max(1, Math.min(delay, this.#lastGoodAt + maxStale - now));
    this.#log.warn(
      { err: err.message, failures, staleMs, nextInMs: delay },
      `refresh failed, nothing changed (the secrets in use were read ${formatDuration(staleMs)} ago): ${err.message}; next try in ${formatDuration(delay)}`,
    );
    this.#warnExpiring(now, 'and no newer one could be read');
    this.#schedule(delay);
  }
}
