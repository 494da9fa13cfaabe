// `tee-init check --config FILE`: validate the config and print what a boot would do — which
// secret from where with which identity, the files with their modes, the command — without
// reading the token, creating anything or contacting anyone.
import { join } from 'node:path';
import { describeCredential } from '../credentials/identities.ts';
import { formatDuration } from '../duration.ts';
import { render, requiredSecrets } from '../render/index.ts';
import { loadConfig } from './load.ts';
import type { Config } from './schema.ts';
import { type ConfiguredListener, configuredListeners } from './schema-listeners.ts';

const PLACEHOLDER_DIR = '/dev/shm/tee-init-XXXXXX';
const octal = (m: number) => `0${m.toString(8)}`;

/** The plan as text; throws InitError(78) for any config problem, like a real boot would. */
export function planText(configPath: string): string {
  const { config, path } = loadConfig(configPath);
  const dir = config.output.dir ?? PLACEHOLDER_DIR;
  const rendered = render({
    run: config.run,
    secrets: Object.fromEntries(Object.entries(config.secrets).map(([n, s]) => [n, { path: s.file ? join(dir, s.file) : undefined }])),
    outputDir: dir,
  });

  const rows: [string, string][] = [];
  const add = (section: string, ...lines: string[]) => lines.forEach((l, i) => rows.push([i === 0 ? section : '', l]));
  const att = config.attestation;
  const req = Object.entries(att.require).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  add('attestation', `token ${att.tokenFile} (waits up to ${formatDuration(att.waitFor)})`, ...(req.length ? [`require ${req.join(', ')}`] : ['require nothing']));
  const creds = Object.entries(config.credentials);
  add('identities', ...(creds.length ? creds.map(([n, c]) => describeCredential(n, c) + (c.type === 'confidential-space' && c.token ? ` with a teeserver token for audience ${c.token.audience}` : '')) : ['none']));
  add('secrets', ...secretLines(config, dir));
  add('output', `${config.output.dir ?? `${PLACEHOLDER_DIR} (a fresh directory)`}${config.output.allowNonTmpfs ? '' : ', must be tmpfs'}${config.output.owner ? `, owner ${config.output.owner}` : ''}`);
  add('run', shellQuote(rendered.argv), ...Object.entries(rendered.env).map(([k, v]) => `env ${k}=${v}`),
    ...(config.run.user ? [`as user ${config.run.user}`] : []),
    ...(config.run.gracePeriod !== undefined ? [`grace period ${formatDuration(config.run.gracePeriod)}`] : []));
  if (rendered.files.length) add('files', ...rendered.files.map((f) => `${join(dir, f.name)} ${octal(f.mode ?? 0o400)} (rendered)`));
  const listeners = configuredListeners(config);
  if (listeners.length) add('listeners', ...listeners.map(describeListener));
  add('fetch', `deadline ${formatDuration(config.fetch.deadline)}, ${config.fetch.concurrency} at once`);
  const e = config.endpoints;
  add('endpoints', `sts ${e.sts}`, `iamcredentials ${e.iamcredentials}`, `secretmanager ${e.secretmanager ?? 'https://secretmanager.googleapis.com (regional refs: secretmanager.LOCATION.rep.googleapis.com)'}`, `teeserver ${e.teeserver}`);

  const width = Math.max(...rows.map(([s]) => s.length));
  return [`config ${path}: OK`, '', ...rows.map(([s, l]) => `${s.padEnd(width)}  ${l}`)].join('\n');
}

function secretLines(config: Config, dir: string): string[] {
  const entries = Object.entries(config.secrets);
  if (entries.length === 0) return ['none'];
  // A secret nothing refers to may still be read by the program at a fixed path; a typo in a
  // placeholder or a share list shows up here first.
  const referenced = new Set([...requiredSecrets(config.run), ...configuredListeners(config).flatMap((l) => l.type.secrets(l.config))]);
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
  return `${name}: ${c.type}${mode}, listen ${String(c.listen)}${to}${secrets.length ? ` (secrets ${secrets.join(', ')})` : ''}`;
}

function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
