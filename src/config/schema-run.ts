// The run stage's config (docs/operations.md, "Several programs: units"): `processes:` beside `run:`,
// `run.stopSignal`, readiness, restarts and `health:`. schema.ts composes these into the config
// schema through withUnits(); the cross-field rules (names in after:, cycles, run vs processes)
// are in checkUnits().
import { z } from 'zod';
import type { BaseSchema, Config } from './schema.ts';
import { configError } from '../lib/errors.ts';
import { startOrder } from './order.ts';
import { configuredListeners, type ConfiguredListener, type ListenerConfig } from './schema-listeners.ts';
import { FORWARDED_SIGNALS, parseStopSignal } from '../lib/signals.ts';
import { reloadSchema } from './schema-refresh.ts';

/** The building blocks schema.ts already has, passed in (schema.ts imports this file). */
export interface Blocks {
  /** A duration field: at most Node's timer limit, at least `minMs`. */
  duration: (minMs?: number) => z.ZodType<number, unknown>;
  /** A HOST:PORT field named `field` in messages. */
  hostPort: (field: string, allowPortZero: boolean) => z.ZodType<string, string>;
  name: (what: string) => z.ZodType<string, string>;
}

const LOOPBACK_HOST = /^(127(\.\d{1,3}){3}|\[::1\]|localhost)$/;

export const isLoopbackHostPort = (hp: string): boolean => LOOPBACK_HOST.test(hp.slice(0, hp.lastIndexOf(':')));

const stopSignal = z.string().transform((v, ctx) => {
  const s = parseStopSignal(v);
  if (s === undefined) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a signal to stop with: use e.g. SIGTERM, SIGINT, SIGQUIT` });
    return z.NEVER;
  }
  return s;
});

const forwardedSignal = z.enum(FORWARDED_SIGNALS, { error: `must be a forwarded signal name such as SIGHUP, SIGUSR1 (not SIGKILL, SIGSTOP, SIGCHLD or a fault signal)` });

const READY_KINDS = ['tcp', 'unix', 'file', 'exec', 'http'] as const;
export type ReadyKind = (typeof READY_KINDS)[number];

function readySchema(b: Blocks) {
  return z
    .strictObject({
      tcp: b.hostPort('ready.tcp', false).optional(),
      unix: z.string().min(1).optional(),
      file: z.string().min(1).optional(),
      exec: z.array(z.string()).min(1).optional(),
      http: z.string().regex(/^http:\/\/(127(\.\d{1,3}){3}|\[::1\]|localhost)(:\d{1,5})?(\/\S*)?$/, {
        error: 'must be a plain http:// URL on a loopback address (e.g. http://127.0.0.1:8080/healthz)',
      }).optional(),
      /** Pause between checks. */
      interval: b.duration(1).default(100),
      /** Give up (and stop the start) after this long. */
      timeout: b.duration(1).default(30_000),
    })
    .superRefine((r, ctx) => {
      const given = READY_KINDS.filter((k) => r[k] !== undefined);
      if (given.length !== 1) {
        ctx.addIssue({ code: 'custom', message: `give exactly one check of ${READY_KINDS.join(', ')}${given.length ? ` (got ${given.join(', ')})` : ''}` });
      }
    });
}

const RESTART_POLICIES = ['never', 'on-failure', 'always'] as const;
const RESTART_DEFAULT = { policy: 'never' as const, max: 5, backoff: { initial: 1_000, max: 30_000 } };

function restartSchema(b: Blocks) {
  const full = z.strictObject({
    policy: z.enum(RESTART_POLICIES, { error: `policy must be one of ${RESTART_POLICIES.join(', ')}` }).default('never'),
    /** Restarts in total, after which the unit ends for good (and the exit rule applies). */
    max: z.number().int().min(0).max(10_000).default(RESTART_DEFAULT.max),
    backoff: z
      .strictObject({ initial: b.duration().default(RESTART_DEFAULT.backoff.initial), max: b.duration().default(RESTART_DEFAULT.backoff.max) })
      .default(RESTART_DEFAULT.backoff),
  });
  // `restart: on-failure` is short for `restart: { policy: on-failure }`.
  return z.union([z.enum(RESTART_POLICIES).transform((policy) => full.parse({ policy })), full]);
}

/**
 * The config schema with the run stage's additions: run.stopSignal, processes (each a run
 * section plus after, ready, oneshot, restart, stopSignal, signals) and health.
 */
export function withUnits(base: BaseSchema, b: Blocks) {
  const run = base.shape.run.unwrap();
  /** The forwarded signals (other than stops) the program gets; default: all of them. */
  const signals = z.array(forwardedSignal).optional();
  const process = run.extend({
    after: z.array(b.name('a unit in after')).default([]),
    ready: readySchema(b).optional(),
    oneshot: z.boolean().default(false),
    restart: restartSchema(b).default(RESTART_DEFAULT),
    stopSignal: stopSignal.optional(),
    reload: reloadSchema.optional(),
    signals,
  });
  return base.extend({
    run: run.extend({ stopSignal: stopSignal.optional(), reload: reloadSchema.optional(), signals }).default(base.shape.run.def.defaultValue as never),
    processes: z
      .record(b.name('a process name'), process)
      .refine((p) => Object.keys(p).length > 0, { error: 'needs at least one process' })
      .optional(),
    health: z
      .strictObject({
        listen: b.hostPort('health.listen', true).refine(isLoopbackHostPort, {
          error: 'must be a loopback address (127.0.0.1:PORT or [::1]:PORT): the health endpoint is not for the network',
        }),
      })
      .optional(),
  });
}

/** The fields of one process unit, as parsed (run-section fields included). */
export interface ProcessConfigFields {
  preset: string;
  command?: string[] | undefined;
  user?: string | undefined;
  after: string[];
  ready?: { interval: number; timeout: number } & Partial<Record<ReadyKind, unknown>> | undefined;
  oneshot: boolean;
  restart: { policy: (typeof RESTART_POLICIES)[number]; max: number; backoff: { initial: number; max: number } };
  reload?: unknown;
}

interface UnitsConfig {
  run: { preset: string; command?: unknown; user?: string | undefined; gracePeriod?: number | undefined; stopSignal?: string | undefined; reload?: unknown; signals?: unknown; env: object; files: unknown[]; with: object };
  processes?: Record<string, ProcessConfigFields> | undefined;
  psk?: object | undefined;
  listeners: Record<string, ListenerConfig>;
  output: { owner?: string | undefined };
}

/**
 * A listener that fronts the program (it waits for what it connects to: psk/tls server mode,
 * a tunnel server) opens after every process and closes first; one the program connects
 * through (client modes, egress proxy, metadata) opens first, and processes may be after it.
 */
export function frontsProcesses(l: ConfiguredListener): boolean {
  return l.type.upstream(l.config) !== undefined;
}

/** Whether the config's run: section says anything (it has defaults even when absent). */
function runGiven(run: UnitsConfig['run']): boolean {
  return run.preset !== 'none' || run.command !== undefined || run.user !== undefined || run.gracePeriod !== undefined
    || run.stopSignal !== undefined || run.reload !== undefined || run.signals !== undefined || Object.keys(run.env).length > 0 || run.files.length > 0 || Object.keys(run.with).length > 0;
}

/**
 * Cross-field rules of the run stage; returns the start order of the units (processes and
 * listeners), or undefined for the single-process run:.
 */
export function checkUnits(config: UnitsConfig, origin: string): string[] | undefined {
  const fail = (field: string, message: string) => configError(`config ${origin}: ${field}: ${message}`);
  const processes = config.processes;
  if (processes === undefined) return undefined;
  if (runGiven(config.run)) throw fail('processes', 'use either run: (one process) or processes: (several), not both');
  const nodes = Object.entries(processes).map(([name, p]) => ({ name, after: p.after, field: `processes.${name}.after` }));
  for (const [name, p] of Object.entries(processes)) {
    const field = `processes.${name}`;
    if (p.oneshot && p.ready) throw fail(`${field}.ready`, 'a oneshot is ready when it has exited 0; it takes no ready: check');
    if (p.oneshot && p.reload !== undefined) throw fail(`${field}.reload`, 'a oneshot has finished before anything rotates; it takes no reload:');
    if (p.oneshot && p.restart.policy === 'always') throw fail(`${field}.restart`, 'a oneshot cannot restart always (it is meant to finish); use on-failure or never');
  }
  for (const l of configuredListeners(config)) {
    if (Object.hasOwn(processes, l.name)) throw fail(`processes.${l.name}`, `the name ${l.name} is also a listener's (${l.field}); rename the process`);
    const fronts = frontsProcesses(l);
    if (fronts) {
      for (const n of nodes) {
        if (n.after.includes(l.name)) throw fail(n.field, `listener ${l.name} fronts the processes and opens after every one of them; ${n.name} cannot wait for it`);
      }
    }
    nodes.push({ name: l.name, after: fronts ? Object.keys(processes) : [], field: l.field });
  }
  try {
    return startOrder(nodes);
  } catch (err) {
    throw configError(`config ${origin}: ${(err as Error).message}`);
  }
}

export type ProcessConfig = NonNullable<Config['processes']>[string];
export type ReadyConfig = NonNullable<ProcessConfig['ready']>;
export type RestartConfig = ProcessConfig['restart'];
export type HealthConfig = NonNullable<Config['health']>;
