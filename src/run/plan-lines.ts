// `tee-init check` for processes:: the start order and, per unit, what it runs and how it is
// started, checked and stopped (rendered like a boot would, with the secrets' future paths).
import { join } from 'node:path';
import { formatDuration } from '../lib/duration.ts';
import type { Config } from '../config/schema.ts';
import { checkUnits, frontsProcesses } from '../config/schema-run.ts';
import { configuredListeners } from '../config/schema-listeners.ts';
import { requiredSecrets, type SecretRef } from '../render/index.ts';
import { describeReady } from './ready.ts';
import { renderUnits } from './render-units.ts';
import { describeReload } from '../render/reload.ts';
import type { ReloadSpec } from '../render/types.ts';

/** How a program takes rotated secrets; with refresh:, also which of them it reads. */
export function reloadLine(reload: ReloadSpec, secrets: readonly string[], quote: (argv: readonly string[]) => string, refreshing: boolean): string {
  const how = describeReload(reload, quote);
  if (!refreshing) return how;
  return secrets.length === 0 ? `${how}; it reads no secret file by path` : `${how}; when ${secrets.join(', ')} change`;
}

export interface UnitsPlan {
  order: string[];
  /** [section, line] rows for the plan table. */
  rows: [string, string][];
  /** Secrets the processes refer to (for the "not referenced" note). */
  referenced: string[];
  /** What `check --show` prints: each process's argv and the env it adds, and every rendered file. */
  show: { processes: Record<string, { preset: string; argv: readonly string[]; env: NodeJS.ProcessEnv }>; files: { path: string; mode: string; content: string }[] };
}

export function unitsPlan(config: Config, origin: string, secrets: Readonly<Record<string, SecretRef>>, outputDir: string, quote: (argv: readonly string[]) => string): UnitsPlan | undefined {
  const order = checkUnits(config, origin);
  if (!order || !config.processes) return undefined;
  const { plans, files } = renderUnits({ processes: config.processes, order, secrets, outputDir, childOf: (_name, env) => ({ env }) });
  const rows: [string, string][] = [['units', `start order: ${order.join(', ')} (stopped in reverse)`]];
  for (const p of plans) {
    const c = config.processes[p.name]!;
    const how = [
      p.oneshot ? 'oneshot (must exit 0)' : undefined,
      p.after.length ? `after ${p.after.join(', ')}` : undefined,
      p.ready ? `ready: ${describeReady(p.ready.spec)} (every ${formatDuration(p.ready.intervalMs)}, up to ${formatDuration(p.ready.timeoutMs)})` : p.oneshot ? undefined : 'ready when started',
      p.restart.policy !== 'never' ? `restart ${p.restart.policy}, at most ${p.restart.max} (backoff ${formatDuration(p.restart.backoff.initialMs)}..${formatDuration(p.restart.backoff.maxMs)})` : undefined,
      p.stopSignal ? `stop with ${p.stopSignal}` : undefined,
      p.gracePeriodMs !== undefined ? `grace period ${formatDuration(p.gracePeriodMs)}` : undefined,
      c.user ? `as user ${c.user}` : undefined,
      p.signals ? `gets only ${[...p.signals].join(', ')}` : undefined,
      p.oneshot || (!config.refresh && p.reload === 'none') ? undefined : reloadLine(p.reload, p.secrets, quote, config.refresh !== undefined),
    ].filter((x) => x !== undefined);
    rows.push([`process ${p.name}`, quote(p.child.argv)], ...how.map((h): [string, string] => ['', h]));
  }
  files.forEach((f, i) => rows.push([i === 0 ? 'files' : '', `${join(outputDir, f.name)} 0${f.mode.toString(8)} (rendered)`]));
  for (const l of configuredListeners(config)) {
    rows.push([`listener ${l.name}`, frontsProcesses(l) ? 'opens after every process is ready' : 'opens first: processes may be after it']);
  }
  const referenced = Object.values(config.processes).flatMap((p) => requiredSecrets({ preset: p.preset, with: p.with, command: p.command, env: p.env, files: p.files }));
  const show = {
    processes: Object.fromEntries(plans.map((p) => [p.name, { preset: config.processes![p.name]!.preset ?? 'none', argv: p.child.argv, env: p.child.env }])),
    files: files.map((f) => ({ path: join(outputDir, f.name), mode: `0${f.mode.toString(8)}`, content: f.content })),
  };
  return { order, rows, referenced, show };
}
