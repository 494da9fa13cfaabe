// The bootstrap with a config, stage after stage (DESIGN.md, "The pipeline"):
//   config -> output dir -> attest -> credentials + fetch -> materialize -> render -> child spec
// Each stage takes what the previous ones produced. Loaded lazily by main.ts: the plain init
// never pays for YAML, zod, jose or the Google clients.
import { readAttestationToken } from './attest/token-file.ts';
import { checkClaims, claimsSummary } from './attest/claims.ts';
import type { Cleanup } from './cleanup.ts';
import { withoutInitSettings } from './cli.ts';
import { configError } from './errors.ts';
import { loadConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { configuredListeners } from './config/schema-listeners.ts';
import type { Log, LogLevel } from './log.ts';
import { OutputDir } from './materialize/output-dir.ts';
import { checkPemSecrets } from './materialize/pem.ts';
import type { PlannedListener } from './proxy/start.ts';
import { render } from './render/index.ts';
import { fetchSecrets, type SecretValue } from './secrets/fetch.ts';
import type { ChildSpec } from './supervise/supervisor.ts';
import { resolveUser, type UserIds } from './users.ts';

const DEFAULT_SECRET_MODE = 0o400;
const DEFAULT_FILE_MODE = 0o400;

export interface BootstrapInput {
  configPath: string;
  /** COMMAND from the command line: replaces run.command when not empty. */
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  /** The log level the command line or environment chose, if any (it wins over the config's). */
  logLevel: LogLevel | undefined;
  log: Log;
  cleanup: Cleanup;
  abort: AbortSignal;
}

export interface Bootstrapped {
  child: ChildSpec;
  gracePeriodMs: number | undefined;
  /** In-process listeners to start once the child runs, with the secrets they read. */
  listeners: Listeners | undefined;
}

export interface Listeners {
  list: PlannedListener[];
  /** Secret bytes by name, as fetched (zeroed by the cleanup when the init ends). */
  secret(name: string): Buffer;
}

/** Whether the attestation token must be read: an identity needs it, or the config checks claims. */
function needsAttestation(config: Config): boolean {
  const used = new Set(Object.values(config.secrets).flatMap((s) => (s.source === 'gcp' ? [s.credentials] : [])));
  const federated = [...used].some((n) => config.credentials[n]?.type === 'confidential-space' && !config.credentials[n]?.token);
  return federated || Object.keys(config.attestation.require).length > 0;
}

function needsOutputDir(config: Config): boolean {
  return Object.values(config.secrets).some((s) => s.file !== undefined) || config.run.files.length > 0 || config.run.preset !== 'none';
}

export async function bootstrap(input: BootstrapInput): Promise<Bootstrapped> {
  const { log, cleanup, abort } = input;
  const { config, path } = loadConfig(input.configPath);
  if (input.logLevel === undefined) log.level = config.log.level;
  log.info({ config: path, secrets: Object.keys(config.secrets).length, preset: config.run.preset }, 'config loaded');

  const user: UserIds | undefined = config.run.user ? resolveUser(config.run.user, 'run.user') : undefined;
  const owner = config.output.owner ? resolveUser(config.output.owner, 'output.owner') : user;

  // Local checks first: a bad output directory fails before anything remote is asked.
  const out = needsOutputDir(config)
    ? OutputDir.create({ dir: config.output.dir, allowNonTmpfs: config.output.allowNonTmpfs, owner }, cleanup, log)
    : undefined;

  if (needsAttestation(config)) {
    const token = await readAttestationToken({ path: config.attestation.tokenFile, waitForMs: config.attestation.waitFor }, log, abort);
    log.info({ ...claimsSummary(token.claims), tokenFile: token.path }, 'attestation token read');
    checkClaims(token.claims, config.attestation.require);
  }

  const secrets = await fetchSecrets({
    config,
    identity: { tokenFile: config.attestation.tokenFile, endpoints: config.endpoints, teeserverTimeoutMs: config.fetch.attemptTimeout },
    log,
    abort,
  });
  cleanup.add('zero secrets in memory', () => {
    for (const s of secrets.values()) s.data.fill(0);
  });
  if (abort.aborted) throw abort.reason;

  const files = [...secrets.values()].filter((s) => config.secrets[s.name]!.file !== undefined);
  checkPemSecrets(files, log);
  const paths = materialize(out, files, config);

  const rendered = render({
    run: runWithCommand(config, input.command),
    secrets: Object.fromEntries(Object.keys(config.secrets).map((name) => [name, { path: paths.get(name) }])),
    outputDir: out?.path ?? '',
  });
  for (const f of rendered.files) out!.write(f.name, Buffer.from(f.content), f.mode ?? DEFAULT_FILE_MODE, `rendered file ${f.name}`);

  const listeners = planListeners(config, secrets);
  return {
    listeners,
    child: {
      argv: rendered.argv,
      env: childEnv(input.env, rendered.env, user),
      uid: user?.uid,
      gid: user?.gid,
    },
    gracePeriodMs: config.run.gracePeriod,
  };
}

/**
 * The listeners and read access to their secrets. Each type checks its secret material here
 * (keys combine, certificates match their keys), so a bad secret stops the boot before any
 * program starts.
 */
function planListeners(config: Config, secrets: Map<string, SecretValue>): Listeners | undefined {
  const planned = configuredListeners(config);
  if (planned.length === 0) return undefined;
  const secret = (name: string): Buffer => {
    const s = secrets.get(name);
    if (!s) throw new Error(`listener asked for secret ${JSON.stringify(name)}, which is not configured`);
    return s.data;
  };
  for (const l of planned) l.type.check?.(l.config, secret, l.field);
  return { list: planned.map(({ name, field, config: c }) => ({ name, field, config: c })), secret };
}

/** COMMAND on the command line replaces run.command (placeholders and all). */
function runWithCommand(config: Config, command: readonly string[]): Config['run'] {
  if (command.length === 0) return config.run;
  if (config.run.preset !== 'none') {
    throw configError(`COMMAND was given on the command line, but run.preset ${config.run.preset} builds the command itself: pass extra arguments in run.with.args, or use preset: none`);
  }
  return { ...config.run, command: [...command] };
}

function materialize(out: OutputDir | undefined, files: SecretValue[], config: Config): Map<string, string> {
  const paths = new Map<string, string>();
  for (const s of files) {
    const c = config.secrets[s.name]!;
    paths.set(s.name, out!.write(c.file!, s.data, c.mode ?? DEFAULT_SECRET_MODE, `secret ${s.name}`));
  }
  return paths;
}

/**
 * The child's environment: the init's own (minus tee-init's settings, which are ours), the
 * rendered run.env, and HOME/USER/LOGNAME of run.user when it switches user.
 */
function childEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>, user: UserIds | undefined): NodeJS.ProcessEnv {
  const env = withoutInitSettings(base);
  if (user?.name) Object.assign(env, { USER: user.name, LOGNAME: user.name, ...(user.home ? { HOME: user.home } : {}) });
  return Object.assign(env, extra);
}
