// The run stage's units (docs/operations.md, "Several programs: units"): what the pipeline hands over, and
// what each unit reports to the runner and the health endpoint.
import type { ListenerHandle } from '../proxy/listener.ts';
import type { ReloadSpec } from '../render/types.ts';
import type { ChildSpec } from '../supervise/child.ts';

export type ReadySpec =
  | { tcp: string }
  | { unix: string }
  | { file: string }
  | { exec: readonly string[] }
  | { http: string };

export interface ReadyCheck {
  spec: ReadySpec;
  intervalMs: number;
  timeoutMs: number;
}

export interface RestartPolicy {
  policy: 'never' | 'on-failure' | 'always';
  /** Restarts in total; then the unit ends for good. */
  max: number;
  backoff: { initialMs: number; maxMs: number };
}

/** A child process unit, rendered: nothing here is a template any more. */
export interface ProcessUnitSpec {
  kind: 'process';
  name: string;
  /** Its config path in messages; default processes.NAME (run: as a unit says run). */
  field?: string | undefined;
  after: readonly string[];
  child: ChildSpec;
  /** Absent: started = ready. */
  ready?: ReadyCheck | undefined;
  oneshot: boolean;
  restart: RestartPolicy;
  /** What the init's stop sends; absent: the signal that asked the init to stop (TERM or INT). */
  stopSignal?: NodeJS.Signals | undefined;
  gracePeriodMs: number;
  /** The forwarded signals (other than stops) it gets; absent: all. */
  signals?: ReadonlySet<string> | undefined;
  /** How it applies rotated secrets (src/refresh/). */
  reload: ReloadSpec;
  /** The secrets it reads (by path): a rotation of one of them reloads it. */
  secrets: readonly string[];
  /**
   * run: or the command line's COMMAND: the one program, supervised as tini and dumb-init do
   * (docs/design.md, "Supervision"): a stop signal other than SIGTERM reaches it as itself (only
   * SIGTERM becomes stopSignal), every stop signal reaches it (a second one too), its own exit is
   * the init's normal end, and it logs as "the child" ('child started', 'child exited').
   */
  single?: boolean | undefined;
}

/** A program that is not restarted (run:, COMMAND). */
export const NEVER_RESTART: RestartPolicy = { policy: 'never', max: 0, backoff: { initialMs: 0, maxMs: 0 } };

/**
 * An in-process listener unit: generic over the listener engine (src/proxy/listener.ts).
 * start() resolves once it is bound and its upstream accepts (that is its readiness).
 */
export interface ListenerUnitSpec {
  kind: 'listener';
  name: string;
  after: readonly string[];
  start(signal: AbortSignal): Promise<ListenerHandle>;
  /** The secrets its config names: a rotation of one of them reloads it (handle.reload()). */
  secrets: readonly string[];
  /** Tests: how long stop() waits for handle.close() (default LISTENER_CLOSE_MS). */
  closeDeadlineMs?: number;
}

export type UnitSpec = ProcessUnitSpec | ListenerUnitSpec;

export const UNIT_STATES = ['waiting', 'starting', 'ready', 'restarting', 'stopping', 'done', 'failed'] as const;
export type UnitState = (typeof UNIT_STATES)[number];

/** One unit as /readyz and /metrics see it. */
export interface UnitStatus {
  name: string;
  kind: 'process' | 'oneshot' | 'listener';
  state: UnitState;
  /** Ready in the DESIGN sense: running and ready, or a oneshot that finished. */
  ready: boolean;
  pid: number | undefined;
  restarts: number;
  /** The last exit status (128+N for signal N), once it has exited. */
  exitStatus: number | undefined;
  /** A listener's counters and gauges (ListenerHandle.stats()). */
  stats?: Readonly<Record<string, number>> | undefined;
}

/** How a unit ended for good. `decides`: whether the exit rule counts it (see runner.ts). */
export interface UnitEnd {
  status: number;
  decides: boolean;
  /** Why it is a failure (for the one error line), when it ended without being asked to. */
  failure?: string | undefined;
}

/** A unit could not start (not ready in time, a listener that failed): the status the init exits with. */
export class UnitFailure extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'UnitFailure';
    this.status = status;
  }
}

/**
 * What a unit did with a rotation: `done`; `skipped` (not running or not ready yet: it reads the
 * new files when it starts; or its reload is none); `failed`, with why (the files are swapped
 * all the same: the program keeps what it had until it reloads or restarts).
 */
export interface ReloadOutcome {
  unit: string;
  /** "SIGHUP", "exec redis-cli", "restart", "listener", "none". */
  how: string;
  result: 'done' | 'skipped' | 'failed';
  why?: string | undefined;
}
