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
import type { Config, PskConfig } from './config/schema.ts';
import type { Log, LogLevel } from './log.ts';
import { OutputDir } from './materialize/output-dir.ts';
import { checkPemSecrets } from './materialize/pem.ts';
import { combineShares } from './proxy/types/psk/combine.ts';
import type { PskProxyOptions } from './proxy/types/psk/proxy.ts';
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
  /** The TLS-PSK proxy to start once the child runs (its keys already combined, in memory). */
  psk: PskProxyOptions | undefined;
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

  const psk = config.psk ? pskOptions(config.psk, secrets, log) : undefined;
  if (psk) cleanup.add('wipe combined PSK keys', () => wipeKeys(psk));
  return {
    psk,
    child: {
      argv: rendered.argv,
      env: childEnv(input.env, rendered.env, user),
      uid: user?.uid,
      gid: user?.gid,
    },
    gracePeriodMs: config.run.gracePeriod,
  };
}

/** Combines each identity's shares into its key; the shares themselves never leave memory. */
function pskOptions(p: PskConfig, secrets: Map<string, SecretValue>, log: Log): PskProxyOptions {
  const keys = new Map<string, Buffer>();
  for (const [identity, ident] of Object.entries(p.identities)) {
    const shares = ident.shares.map((name) => ({ name, value: secrets.get(name)!.data }));
    const spec = ident.combine === 'hkdf-sha256' ? { method: ident.combine, salt: ident.salt!, info: ident.info! } : { method: ident.combine };
    keys.set(identity, combineShares(shares, spec, identity));
  }
  log.info({ identities: [...keys.keys()], mode: p.mode }, 'PSK keys combined');
  const common = {
    listen: p.listen,
    connect: p.connect,
    tls: { tls12: p.tls12 },
    timeouts: { handshakeMs: p.handshakeTimeout, idleMs: p.idleTimeout },
    maxConnections: p.maxConnections,
    log,
  };
  if (p.mode === 'server') return { ...common, mode: 'server', identities: keys, ready: { timeoutMs: p.readyTimeout } };
  const [[identity, key]] = [...keys] as [[string, Buffer]];
  return { ...common, mode: 'client', identity, key };
}

function wipeKeys(o: PskProxyOptions): void {
  if (o.mode === 'client') o.key.fill(0);
  else for (const k of o.identities.values()) k.fill(0);
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
