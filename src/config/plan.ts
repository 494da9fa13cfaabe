// `tee-init check --config FILE [--] [COMMAND...]`: validate the config and print what a boot
// would do — which secret from where with which identity, the files with their modes, the
// command — without reading the token, creating anything or contacting anyone. It refuses what
// a boot would refuse on this machine (users, output directory, COMMAND with a preset), and
// reports every problem it finds, not just the first.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describeCredential } from '../credentials/identities.ts';
import { formatDuration } from '../lib/duration.ts';
import { InitError } from '../lib/errors.ts';
import { describePlan, render, requiredSecrets, type RenderInput } from '../render/index.ts';
import { checkSecretFile } from '../secrets/sources/file.ts';
import { configProblems, loadConfig } from './load.ts';

export { problemsOf } from './load.ts';
import { commandProblem, outputDirProblem, programProblem, runIdentities, runWithCommand } from './local.ts';
import { reloadLine, unitsPlan } from '../run/plan-lines.ts';
import { reloadOf, secretsUsed } from '../run/render-units.ts';
import { rotatingSecrets } from './schema-refresh.ts';
import type { Config } from './schema.ts';
import { type ConfiguredListener, configuredListeners } from './schema-listeners.ts';

const PLACEHOLDER_DIR = '/dev/shm/tee-init-XXXXXX';
const octal = (m: number) => `0${m.toString(8)}`;

export interface PlanOptions {
  /** COMMAND as it would be given to the boot: replaces run.command. */
  command?: readonly string[];
  /** Append the rendered argv, env and the full content of every rendered file. */
  show?: boolean;
  /** Where passwd and group live (tests). */
  etc?: string;
  /** Told what may go wrong but is no error (a program not found on this machine). */
  warn?: (line: string) => void;
}

/** Runs each check, keeping every config problem (InitError 78) instead of stopping at the first. */
function collector() {
  const problems: string[] = [];
  const attempt = <T>(check: () => T): T | undefined => {
    try {
      return check();
    } catch (err) {
      if (!(err instanceof InitError) || err.exitCode !== 78) throw err;
      problems.push(err.message);
      return undefined;
    }
  };
  return { problems, attempt };
}

/** The plan as text; throws InitError(78) carrying every problem, as a boot would for the first. */
export function planText(configPath: string, options: PlanOptions = {}): string {
  const { config, path } = loadConfig(configPath);
  const { problems, attempt } = collector();
  // A file secret the boot could not read fails here too (exists, regular, readable, size).
  for (const [name, s] of Object.entries(config.secrets)) if (s.source === 'file') attempt(() => checkSecretFile(name, s.path));
  if (options.etc !== undefined && !existsSync(join(options.etc, 'passwd'))) problems.push(`--etc ${options.etc}: there is no passwd file in it: give the image's /etc directory`);
  const ids = runIdentities(config, options.etc, attempt);
  const dirProblem = outputDirProblem(config);
  if (dirProblem) problems.push(dirProblem);
  const dir = config.output.dir ?? PLACEHOLDER_DIR;
  const secretRefs = Object.fromEntries(Object.entries(config.secrets).map(([n, s]) => [n, { path: s.file ? join(dir, s.file) : undefined }]));
  // processes: (several units) or run: (the one process), never both (the schema says so).
  const units = config.processes ? attempt(() => unitsPlan(config, path, secretRefs, dir, shellQuote)) : undefined;
  const run = config.processes ? undefined : attempt(() => runWithCommand(config, options.command ?? []));
  const input: RenderInput | undefined = run && { run, secrets: secretRefs, outputDir: dir };
  const rendered = input && attempt(() => render(input));
  const reload = rendered && attempt(() => reloadOf('run.reload', config.run.reload, rendered, { secrets: secretRefs, outputDir: dir, with: run!.with ?? {} }));
  const tooLong = rendered && commandProblem(rendered.argv, rendered.env);
  if (tooLong) problems.push(tooLong);
  if (problems.length || (config.processes ? !units : !rendered)) throw configProblems(path, problems);
  // Not errors: the image's programs need not be on this machine (hence only warnings).
  if (options.warn && rendered?.argv[0]) {
    const problem = programProblem(rendered.argv[0], process.env.PATH, ids.user, config.run.preset === 'none' ? 'run.command' : `run.preset ${config.run.preset}`);
    if (problem) options.warn(`${problem}${options.etc ? ' (the image may have it: this checks this machine)' : ''}`);
  }
  for (const [name, p] of Object.entries(options.warn ? (config.processes ?? {}) : {})) {
    const file = p.command?.[0];
    const problem = file && !file.includes('{{') && programProblem(file, process.env.PATH, ids.processUsers.get(name), `processes.${name}.command`);
    if (problem) options.warn!(`${problem}${options.etc ? ' (the image may have it: this checks this machine)' : ''}`);
  }

  const rows: [string, string][] = [];
  const add = (section: string, ...lines: string[]) => lines.forEach((l, i) => rows.push([i === 0 ? section : '', l]));
  const att = config.attestation;
  const req = Object.entries(att.require).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  add('attestation', `token ${att.tokenFile} (waits up to ${formatDuration(att.waitFor)})`, ...(req.length ? [`require ${req.join(', ')}`] : ['require nothing']));
  const creds = Object.entries(config.credentials);
  add('identities', ...(creds.length ? creds.map(([n, c]) => describeCredential(n, c) + (c.type === 'confidential-space' && c.token ? ` with a teeserver token for audience ${c.token.audience}` : '')) : ['none']));
  add('secrets', ...secretLines(config, units?.referenced ?? requiredSecrets(run ?? config.run), dir));
  add('output', `${config.output.dir ?? `${PLACEHOLDER_DIR} (a fresh directory)`}${config.output.allowNonTmpfs ? '' : ', must be tmpfs'}${ids.owner ? `, owner ${ids.owner.uid}:${ids.owner.gid}` : ''}`);
  if (units) rows.push(...units.rows);
  if (rendered) {
    const stop = config.run.stopSignal ?? rendered.stopSignal;
    add('run', shellQuote(rendered.argv), ...Object.entries(rendered.env).map(([k, v]) => `env ${k}=${v}`),
      ...(ids.user ? [`as user ${config.run.user} (uid ${ids.user.uid}, gid ${ids.user.gid} in ${options.etc ?? '/etc'})`] : []),
      ...(config.run.gracePeriod !== undefined ? [`grace period ${formatDuration(config.run.gracePeriod)}`] : []),
      ...(stop ? [`stop with ${stop}`] : []),
      ...(config.run.signals ? [`gets only ${config.run.signals.join(', ')} (and its stop signal)`] : []),
      ...(reload && (config.refresh || reload !== 'none') ? [reloadLine(reload, secretsUsed(rendered, secretRefs), shellQuote, config.refresh !== undefined)] : []));
    if (rendered.files.length) add('files', ...rendered.files.map((f) => `${join(dir, f.name)} ${octal(f.mode ?? 0o400)} (rendered)`));
  }
  if (config.health) add('health', `http://${config.health.listen}/healthz, /readyz, /metrics (loopback only)`);
  const listeners = configuredListeners(config);
  if (listeners.length) add('listeners', ...listeners.map(describeListener));
  if (config.refresh) add('refresh', ...refreshLines(config));
  add('fetch', `deadline ${formatDuration(config.fetch.deadline)}, ${config.fetch.concurrency} at once`);
  const e = config.endpoints;
  add('endpoints', `sts ${e.sts}`, `iamcredentials ${e.iamcredentials}`, `secretmanager ${e.secretmanager ?? 'https://secretmanager.googleapis.com (regional refs: secretmanager.LOCATION.rep.googleapis.com)'}`, `teeserver ${e.teeserver}`);

  const width = Math.max(...rows.map(([s]) => s.length));
  const plan = [`config ${path}: OK`, '', ...rows.map(([s, l]) => `${s.padEnd(width)}  ${l}`)];
  // Paths and config text only: no secret exists at this stage. Values of run.env are config
  // text; the inherited environment is never part of a render.
  if (options.show && input) plan.push('', '# what the program gets (--show)', describePlan(input).trimEnd());
  if (options.show && units) plan.push('', '# what the programs get (--show)', stringify(units.show, { lineWidth: 0, aliasDuplicateObjects: false }).trimEnd());
  return plan.join('\n');
}

function refreshLines(config: Config): string[] {
  const r = config.refresh!;
  const { rotating, pinned } = rotatingSecrets(config.secrets);
  return [
    `every ${formatDuration(r.every)} (up to ${Math.round(r.jitter * 100)}% earlier at random)${r.onSighup ? ', and at once on SIGHUP' : ''}`,
    r.maxStale !== undefined ? `fatal (69) after ${formatDuration(r.maxStale)} without a good read` : 'a failing source is logged, never fatal (no maxStale)',
    rotating.length ? `reads ${rotating.join(', ')} again` : 'nothing to read again: every secret is pinned to a version',
    ...(pinned.length ? [`pinned (never change): ${pinned.join(', ')}`] : []),
  ];
}

function secretLines(config: Config, usedByPrograms: readonly string[], dir: string): string[] {
  const entries = Object.entries(config.secrets);
  if (entries.length === 0) return ['none'];
  // A secret nothing refers to may still be read by the program at a fixed path; a typo in a
  // placeholder or a share list shows up here first.
  const referenced = new Set([...usedByPrograms, ...configuredListeners(config).flatMap((l) => l.type.secrets(l.config))]);
  const w = Math.max(...entries.map(([n]) => n.length));
  return entries.map(([name, s]) => {
    const from = s.source === 'gcp' ? `${s.ref} as ${s.credentials}` : `file ${s.path}`;
    const to = s.file ? `${join(dir, s.file)} ${octal(s.mode ?? 0o400)}` : 'memory only';
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

function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
