// `tee-init check --config FILE [--] [COMMAND...]`: the plan (./index.ts) as text — which
// secret from where with which identity, the files with their modes, each program with its
// user, readiness, stop and reload, the listeners, the ports — made by the very code the boot
// runs, without reading the token, creating anything or contacting anyone. --show adds every
// program's argv and the environment it gets from the config, and every rendered file.
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describeCredential } from '../credentials/identities.ts';
import { formatDuration } from '../lib/duration.ts';
import { rotatingSecrets } from '../config/schema-refresh.ts';
import { frontsProcesses } from '../config/schema-run.ts';
import type { ConfiguredListener } from '../config/schema-listeners.ts';
import { describeReload } from '../render/reload.ts';
import type { ReloadSpec } from '../render/types.ts';
import { describeReady } from '../run/ready.ts';
import type { ProcessPlan } from '../run/render-units.ts';
export { problemsOf } from '../config/load.ts';
import { PLACEHOLDER_DIR, plan as makePlan, type Plan } from './index.ts';

const octal = (m: number) => `0${m.toString(8)}`;

export interface TextOptions {
  /** Append each program's argv and env and the content of every rendered file. */
  show?: boolean | undefined;
  /** Where passwd and group were read (check --etc). */
  etc?: string | undefined;
}

export interface CheckOptions extends TextOptions {
  /** COMMAND as it would be given to the boot: replaces run.command. */
  command?: readonly string[] | undefined;
  /** Told what may go wrong but is no error (a program not found on this machine). */
  warn?: ((line: string) => void) | undefined;
}

/**
 * What `tee-init check` prints: the plan of `configPath` as text. Throws what the boot would
 * throw (the same InitError: problemsOf() lists every problem) before its first network call.
 */
export async function checkText(configPath: string, options: CheckOptions = {}): Promise<string> {
  // No inherited environment: --show prints what the config gives the programs, nothing else.
  const plan = await makePlan({ configPath, command: options.command ?? [], env: {}, etc: options.etc, freshDir: PLACEHOLDER_DIR });
  for (const w of plan.warnings) options.warn?.(w);
  return planText(plan, options);
}

export function planText(plan: Plan, options: TextOptions = {}): string {
  const { config } = plan;
  const rows: [string, string][] = [];
  const add = (section: string, ...lines: string[]) => lines.forEach((l, i) => rows.push([i === 0 ? section : '', l]));
  const att = config.attestation;
  const req = Object.entries(att.require).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  add('attestation', `token ${att.tokenFile} (waits up to ${formatDuration(att.waitFor)})`, ...(req.length ? [`require ${req.join(', ')}`] : ['require nothing']));
  const creds = Object.entries(config.credentials);
  add('identities', ...(creds.length ? creds.map(([n, c]) => describeCredential(n, c) + (c.type === 'confidential-space' && c.token ? ` with a teeserver token for audience ${c.token.audience}` : '')) : ['none']));
  add('secrets', ...secretLines(plan));
  const owner = plan.ids.owner;
  add('output', `${plan.output.fresh ? `${plan.output.path} (a fresh directory)` : plan.output.path}${config.output.allowNonTmpfs ? '' : ', must be tmpfs'}${owner ? `, owner ${owner.uid}:${owner.gid}` : ''}`);
  if (plan.order) add('units', `start order: ${plan.order.join(', ')} (stopped in reverse)`);
  for (const u of plan.units) add(u.single ? 'run' : `process ${u.name}`, shellQuote(u.child.argv), ...unitLines(plan, u, options.etc));
  if (plan.files.length) add('files', ...plan.files.map((f) => `${join(plan.output.path, f.name)} ${octal(f.mode)} (rendered)`));
  if (plan.health) add('health', `http://${plan.health.listen}/healthz, /readyz, /metrics (loopback only)`);
  if (plan.listeners.length) add('listeners', ...plan.listeners.map(describeListener));
  if (plan.order) {
    for (const l of plan.listeners) rows.push([`listener ${l.name}`, frontsProcesses(l) ? 'opens after every process is ready' : 'opens first: processes may be after it']);
  }
  const envLines = Object.entries(plan.listenerEnv).map(([k, v]) => `${k}=${v}`);
  if (envLines.length) add('program env', ...envLines.map((l) => `${l} (from the listeners, env: true)`));
  if (config.refresh) add('refresh', ...refreshLines(plan));
  add('fetch', `deadline ${formatDuration(config.fetch.deadline)}, ${config.fetch.concurrency} at once`);
  const e = config.endpoints;
  add('endpoints', `sts ${e.sts}`, `iamcredentials ${e.iamcredentials}`, `secretmanager ${e.secretmanager ?? 'https://secretmanager.googleapis.com (regional refs: secretmanager.LOCATION.rep.googleapis.com)'}`, `teeserver ${e.teeserver}`);

  const width = Math.max(...rows.map(([s]) => s.length));
  const text = [`config ${plan.path}: OK`, '', ...rows.map(([s, l]) => `${s.padEnd(width)}  ${l}`)];
  // Paths and config text only: no secret exists at this stage, and the inherited environment
  // is not part of the plan check makes (it passes none).
  if (options.show) text.push('', config.processes ? '# what the programs get (--show)' : '# what the program gets (--show)', stringify(shown(plan), { lineWidth: 0, aliasDuplicateObjects: false }).trimEnd());
  return text.join('\n');
}

/** How a program takes rotated secrets, and which of them it reads; only when something rotates. */
function reloadLine(reload: ReloadSpec, secrets: readonly string[]): string {
  const how = describeReload(reload, shellQuote);
  return secrets.length === 0 ? `${how}; it reads no secret file by path` : `${how}; when ${secrets.join(', ')} change`;
}

function unitLines(plan: Plan, p: ProcessPlan, etc: string | undefined): string[] {
  const { config } = plan;
  const userSpec = p.single ? config.run.user : config.processes?.[p.name]?.user;
  const ids = p.single ? plan.ids.user : plan.ids.processUsers.get(p.name);
  const lines = [
    ...(p.single ? Object.entries(plan.run?.rendered.env ?? {}).map(([k, v]) => `env ${k}=${v}`) : []),
    p.oneshot ? 'oneshot (must exit 0)' : undefined,
    p.after.length ? `after ${p.after.join(', ')}` : undefined,
    p.ready ? `ready: ${describeReady(p.ready.spec)} (every ${formatDuration(p.ready.intervalMs)}, up to ${formatDuration(p.ready.timeoutMs)})` : p.oneshot || p.single ? undefined : 'ready when started',
    p.restart.policy !== 'never' ? `restart ${p.restart.policy}, at most ${p.restart.max} (backoff ${formatDuration(p.restart.backoff.initialMs)}..${formatDuration(p.restart.backoff.maxMs)})` : undefined,
    p.stopSignal ? `stop with ${p.stopSignal}` : undefined,
    p.gracePeriodMs !== undefined ? `grace period ${formatDuration(p.gracePeriodMs)}` : undefined,
    userSpec ? `as user ${userSpec}${ids ? ` (uid ${ids.uid}, gid ${ids.gid} in ${etc ?? '/etc'})` : ''}` : undefined,
    p.signals ? `gets only ${[...p.signals].join(', ')}${p.single ? ' (and its stop signal)' : ''}` : undefined,
    // Rotation lines only when something rotates: without refresh: nothing ever reloads.
    !p.oneshot && config.refresh ? reloadLine(p.reload, p.secrets) : undefined,
  ];
  return lines.filter((x) => x !== undefined);
}

/** What --show prints: each program's preset, argv and the env the config gives it; every file. */
function shown(plan: Plan): Record<string, unknown> {
  const { config } = plan;
  const programs = Object.fromEntries(plan.units.map((u) => {
    const preset = (u.single ? config.run.preset : config.processes?.[u.name]?.preset) ?? 'none';
    return [u.name, { preset, argv: u.child.argv, env: u.child.env }];
  }));
  const files = plan.files.map((f) => ({ path: join(plan.output.path, f.name), mode: octal(f.mode), content: f.content }));
  return config.processes ? { processes: programs, files } : { ...programs, files };
}

function refreshLines(plan: Plan): string[] {
  const r = plan.config.refresh!;
  const { rotating, pinned } = rotatingSecrets(plan.config.secrets);
  return [
    `every ${formatDuration(r.every)} (up to ${Math.round(r.jitter * 100)}% earlier at random)${r.onSighup ? ', and at once on SIGHUP' : ''}`,
    r.maxStale !== undefined ? `fatal (69) after ${formatDuration(r.maxStale)} without a good read` : 'a failing source is logged, never fatal (no maxStale)',
    rotating.length ? `reads ${rotating.join(', ')} again` : 'nothing to read again: every secret is pinned to a version',
    ...(pinned.length ? [`pinned (never change): ${pinned.join(', ')}`] : []),
  ];
}

function secretLines(plan: Plan): string[] {
  const entries = Object.entries(plan.config.secrets);
  if (entries.length === 0) return ['none'];
  // A secret nothing refers to may still be read by the program at a fixed path; a typo in a
  // placeholder or a share list shows up here first.
  const referenced = new Set([...plan.referenced, ...plan.listeners.flatMap((l) => l.type.secrets(l.config))]);
  const w = Math.max(...entries.map(([n]) => n.length));
  return entries.map(([name, s]) => {
    const from = s.source === 'gcp' ? `${s.ref} as ${s.credentials}` : `file ${s.path}`;
    const to = s.file ? `${join(plan.output.path, s.file)} ${octal(s.mode ?? 0o400)}` : 'memory only';
    return `${name.padEnd(w)}  ${from} -> ${to}${referenced.has(name) ? '' : ' (not referenced by run or a listener)'}`;
  });
}

function describeListener({ name, type, config: c }: ConfiguredListener): string {
  const mode = typeof c.mode === 'string' ? ` ${c.mode}` : '';
  const to = typeof c.connect === 'string' ? ` -> ${c.connect}` : '';
  const secrets = type.secrets(c);
  const attest = c.attest as { audience: string } | undefined;
  const verify = (c.verify as { attestation?: { audience: string } } | undefined)?.attestation;
  const attested = attest ? `, attests to ${attest.audience}` : verify ? `, verifies the server's attestation for ${verify.audience}` : '';
  return `${name}: ${c.type}${mode}, listen ${String(c.listen)}${to}${secrets.length ? ` (secrets ${secrets.join(', ')})` : ''}${attested}`;
}

export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
