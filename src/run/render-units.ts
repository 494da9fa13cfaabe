// The render stage for `processes:`: each process's preset/command/env/files rendered like run:
// (src/render/), its readiness check's placeholders filled, its defaults applied (the preset's
// stop signal and readiness). Messages name processes.NAME.* instead of run.*.
import type { ProcessConfig } from '../config/schema-run.ts';
import { configError, InitError } from '../lib/errors.ts';
import { render, type ReloadSpec, type Rendered, type SecretRef } from '../render/index.ts';
import type { ReloadConfig } from '../config/schema-refresh.ts';
import { expandArgv, expandText, type Scope } from '../render/placeholders.ts';
import type { ChildSpec } from '../supervise/child.ts';
import type { ProcessUnitSpec, ReadyCheck, ReadySpec } from './types.ts';

/** A process unit before the init's defaults (the grace period) are known. */
export type ProcessPlan = Omit<ProcessUnitSpec, 'gracePeriodMs'> & {
  /** Absent: the init's (--grace-period, else the default); with `single`, --grace-period wins. */
  gracePeriodMs: number | undefined;
};

export interface RenderUnitsInput {
  processes: Readonly<Record<string, ProcessConfig>>;
  /** In start order; only the processes' names are used here. */
  order: readonly string[];
  secrets: Readonly<Record<string, SecretRef>>;
  outputDir: string;
  /** The child environment and user of each process, from the pipeline. */
  childOf(name: string, env: Record<string, string>): Omit<ChildSpec, 'argv'>;
}

export interface RenderedUnits {
  plans: ProcessPlan[];
  /** Every process's rendered files, names unique across them all. */
  files: Rendered['files'];
}

/** Re-labels render()'s run.* fields as processes.NAME.*: the same checks, the right field in the message. */
function asProcess<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof InitError)) throw err;
    throw new InitError(err.exitCode, err.message.replace(/\brun\.(preset|with|command|env|files)\b/g, `processes.${name}.$1`), err.detail);
  }
}

/** A preset knows how its program shows it is ready (postgres, redis: their socket accepts). */
export function presetReady(rendered: Rendered): ReadyCheck | undefined {
  return rendered.ready ? { spec: rendered.ready, intervalMs: 100, timeoutMs: 30_000 } : undefined;
}

function readyCheck(name: string, p: ProcessConfig, rendered: Rendered, scope: Scope): ReadyCheck | undefined {
  const field = `processes.${name}.ready`;
  if (p.oneshot) return undefined;
  if (p.ready === undefined) return presetReady(rendered);
  const r = p.ready;
  let spec: ReadySpec;
  if (r.exec !== undefined) spec = { exec: expandArgv(r.exec, scope, `${field}.exec`) };
  else if (r.tcp !== undefined) spec = { tcp: expandText(r.tcp, scope, `${field}.tcp`) };
  else if (r.http !== undefined) spec = { http: expandText(r.http, scope, `${field}.http`) };
  else if (r.unix !== undefined) spec = { unix: expandText(r.unix, scope, `${field}.unix`) };
  else spec = { file: expandText(r.file!, scope, `${field}.file`) };
  const path = 'unix' in spec ? spec.unix : 'file' in spec ? spec.file : undefined;
  if (path !== undefined && !path.startsWith('/')) throw configError(`${field}: ${JSON.stringify(path)} must be an absolute path (use {{output.dir}}/...)`);
  return { spec, intervalMs: r.interval, timeoutMs: r.timeout };
}

/** The config's reload: (its exec rendered like ready.exec), else the preset's, else none. */
export function reloadOf(field: string, given: ReloadConfig | undefined, rendered: Rendered, scope: Scope): ReloadSpec {
  if (given === undefined) return rendered.reload ?? 'none';
  if (typeof given === 'string' || 'signal' in given) return given;
  return { exec: expandArgv(given.exec, scope, `${field}.exec`), timeoutMs: given.timeout };
}

/**
 * The secrets a program reads: those whose file path its argv, env or rendered files name
 * (presets and templates only ever pass paths). A rotation of one of them reloads it.
 */
export function secretsUsed(rendered: Rendered, secrets: Readonly<Record<string, SecretRef>>): string[] {
  const text = JSON.stringify([rendered.argv, rendered.env, rendered.files.map((f) => f.content)]);
  return Object.entries(secrets).flatMap(([name, ref]) => (ref.path !== undefined && text.includes(JSON.stringify(ref.path).slice(1, -1)) ? [name] : []));
}

export function renderUnits(input: RenderUnitsInput): RenderedUnits {
  const plans: ProcessPlan[] = [];
  const files: Rendered['files'] = [];
  const owners = new Map<string, string>();
  for (const name of input.order) {
    const p = input.processes[name];
    if (p === undefined) continue; // a listener
    const run = { preset: p.preset, with: p.with, command: p.command, env: p.env, files: p.files };
    const rendered = asProcess(name, () => render({ run, secrets: input.secrets, outputDir: input.outputDir }));
    for (const f of rendered.files) {
      const other = owners.get(f.name);
      if (other !== undefined) throw configError(`processes.${name}: writes ${JSON.stringify(f.name)}, which processes.${other} writes too (the output directory is shared): rename one`);
      owners.set(f.name, name);
      files.push(f);
    }
    const scope: Scope = { secrets: input.secrets, outputDir: input.outputDir, with: p.with };
    plans.push({
      kind: 'process',
      name,
      after: p.after,
      child: { ...input.childOf(name, rendered.env), argv: rendered.argv },
      ready: readyCheck(name, p, rendered, scope),
      oneshot: p.oneshot,
      restart: { policy: p.restart.policy, max: p.restart.max, backoff: { initialMs: p.restart.backoff.initial, maxMs: p.restart.backoff.max } },
      stopSignal: p.stopSignal ?? rendered.stopSignal,
      gracePeriodMs: p.gracePeriod,
      signals: p.signals ? new Set(p.signals) : undefined,
      reload: reloadOf(`processes.${name}.reload`, p.reload, rendered, scope),
      secrets: secretsUsed(rendered, input.secrets),
    });
  }
  return { plans, files };
}
