// The bootstrap with a config, stage after stage (docs/design.md, "The pipeline"):
//   config -> output dir -> attest -> credentials + fetch -> materialize -> render -> child spec
// Each stage takes what the previous ones produced. Loaded lazily by main.ts: the plain init
// never pays for YAML, zod, jose or the Google clients.
import { defaultTokenOptions, readAttestationToken } from './attest/token-file.ts';
import { checkClaims, checkDebug, claimsSummary } from './attest/claims.ts';
import type { Cleanup } from './lib/cleanup.ts';
import { withoutInitSettings } from './lib/env.ts';
import { configError } from './lib/errors.ts';
import { loadConfig } from './config/load.ts';
import { runIdentities, runWithCommand } from './config/local.ts';
import type { Config } from './config/schema.ts';
import { configuredListeners } from './config/schema-listeners.ts';
import type { Log, LogLevel } from './lib/log.ts';
import { OutputDir } from './materialize/output-dir.ts';
import { checkPemSecrets } from './lib/pem.ts';
import type { ListenerSet } from './proxy/start.ts';
import { listenerRuntime } from './proxy/types/index.ts';
import { parseHostPort } from './lib/address.ts';
import { tokenSourcesFor } from './credentials/tokens/index.ts';
import { createAttester } from './attest/attester.ts';
import { render, type Rendered } from './render/index.ts';
import { presetReady, reloadOf, renderUnits, secretsUsed, type ProcessPlan } from './run/render-units.ts';
import type { RefreshPlan } from './refresh/refresher.ts';
import { rotatingSecrets } from './config/schema-refresh.ts';
import type { Scope } from './render/placeholders.ts';
import type { SecretRef } from './render/types.ts';
import { checkUnits, type HealthConfig } from './config/schema-run.ts';
import { fetchSecrets, type SecretValue } from './secrets/fetch.ts';
import { checkQuorums, optionalSecrets, type Quorum } from './secrets/quorum.ts';
import type { ChildSpec } from './supervise/supervisor.ts';
import type { UserIds } from './lib/users.ts';

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
  /** The run stage's process units, in start order: run: as the one unit `run`, or processes:. */
  units: ProcessPlan[];
  health: HealthConfig | undefined;
  /** In-process listeners (listeners: and psk:), with the secrets they read. */
  listeners: ListenerSet | undefined;
  /** Rotation (refresh:). */
  refresh: RefreshPlan | undefined;
}

/** Whether the attestation token must be read: an identity needs it, or the config checks claims. */
function needsAttestation(config: Config): boolean {
  const used = new Set(Object.values(config.secrets).flatMap((s) => (s.source === 'gcp' ? [s.credentials] : [])));
  const federated = [...used].some((n) => config.credentials[n]?.type === 'confidential-space' && !config.credentials[n]?.token);
  return federated || Object.keys(config.attestation.require).length > 0;
}

/** Which source the last attestation used, so that a refresh says so when it changes. */
interface AttestState {
  source?: 'file' | 'teeserver';
}

/** Reads the token (waiting for the launcher), logs what it says, checks the claims the config requires. */
async function attest(config: Config, log: Log, abort: AbortSignal, level: 'info' | 'debug', state: AttestState): Promise<void> {
  const token = await readAttestationToken(defaultTokenOptions(config), log, abort);
  const changed = state.source !== undefined && state.source !== token.source;
  state.source = token.source;
  const said = changed ? 'info' : level;
  if (token.source === 'file') log[said]({ ...claimsSummary(token.claims), tokenFile: token.path, source: 'file' }, 'attestation token read from the launcher\'s token file');
  else {
    log[said](
      { ...claimsSummary(token.claims), tokenFile: config.attestation.tokenFile, teeserver: token.path, source: 'teeserver' },
      `attestation token file ${config.attestation.tokenFile} expired at ${token.fileExpiredAt?.toISOString()} (the launcher does not refresh it: refresh disabled, or Intel Trust Authority configured): using a default token from the teeserver ${token.path}`,
    );
  }
  checkClaims(token.claims, config.attestation.require);
  if (checkDebug(token.claims, config.attestation.allowDebug)) {
    log.warn({ dbgstat: token.claims.dbgstat }, `attestation: dbgstat is ${JSON.stringify(token.claims.dbgstat)}, a debug image: the operator can read the secrets (attestation.allowDebug: true)`);
  }
}

/** t-of-n share groups (combine: shamir): their shares may fail to arrive, as long as enough do. */
function shareQuorums(config: Config): Quorum[] {
  return configuredListeners(config).flatMap((l) => (l.type.quorums?.(l.config) ?? []).map((q) => ({ ...q, what: `${l.field} ${q.what}` })));
}

function identityContext(config: Config) {
  return {
    tokenFile: config.attestation.tokenFile,
    defaultToken: defaultTokenOptions(config),
    allowDebug: config.attestation.allowDebug,
    endpoints: config.endpoints,
    teeserverTimeoutMs: config.fetch.attemptTimeout,
  };
}

function needsOutputDir(config: Config): boolean {
  const runs = config.processes ? Object.values(config.processes) : [config.run];
  // Processes share the directory (a data dir, a socket, a ready file): a reference is a need.
  const referenced = config.processes !== undefined && /\{\{[ \t]*output\.dir[ \t]*\}\}/.test(JSON.stringify(config.processes));
  return referenced || Object.values(config.secrets).some((s) => s.file !== undefined) || runs.some((r) => r.files.length > 0 || r.preset !== 'none');
}

export async function bootstrap(input: BootstrapInput): Promise<Bootstrapped> {
  const { log, cleanup, abort } = input;
  const { config, path } = loadConfig(input.configPath);
  if (input.logLevel === undefined) log.level = config.log.level;
  const runs = config.processes ? { processes: Object.keys(config.processes) } : { preset: config.run.preset };
  log.info({ config: path, secrets: Object.keys(config.secrets).length, ...runs }, 'config loaded');

  const { user, owner, processUsers } = runIdentities(config);
  const order = checkUnits(config, path);
  if (order && input.command.length > 0) throw configError(`COMMAND was given on the command line, but the config runs processes: (${order.join(', ')}); give the commands there`);

  // Local checks first: a bad output directory fails before anything remote is asked.
  const out = needsOutputDir(config)
    ? OutputDir.create({ dir: config.output.dir, allowNonTmpfs: config.output.allowNonTmpfs, owner }, cleanup, log)
    : undefined;

  const attestState: AttestState = {};
  if (needsAttestation(config)) await attest(config, log, abort, 'info', attestState);

  const quorums = shareQuorums(config);
  const optional = optionalSecrets(quorums, config.secrets);
  const secrets = await fetchSecrets({ config, identity: identityContext(config), log, abort, optional });
  cleanup.add('zero secrets in memory', () => {
    for (const s of secrets.values()) s.data.fill(0);
  });
  if (abort.aborted) throw abort.reason;
  checkQuorums(quorums, secrets);

  // Every secret, not only the files: a key kept in memory (for a listener) must match too.
  checkPemSecrets([...secrets.values()].map((s) => ({ ...s, ...config.secrets[s.name]! })), log);
  const paths = materialize(out, secrets, config);

  const secretRefs = Object.fromEntries(Object.keys(config.secrets).map((name) => [name, { path: paths.get(name) }]));
  const writeAll = (files: Rendered['files']) => {
    for (const f of files) out!.write(f.name, Buffer.from(f.content), f.mode ?? DEFAULT_FILE_MODE, `rendered file ${f.name}`);
  };
  // After rendering: a config error is reported before a bad share or certificate.
  const withListeners = async () => ({
    listeners: await planListeners(config, secrets, log, cleanup),
    health: config.health,
    refresh: config.refresh && refreshPlan(config, secrets, out, log, attestState),
  });
  const fromListeners = listenerEnv(config);

  if (config.processes && order) {
    const { plans, files } = renderUnits({
      processes: config.processes,
      order,
      secrets: secretRefs,
      outputDir: out?.path ?? '',
      childOf: (name, env) => {
        const u = processUsers.get(name);
        return { env: childEnv(input.env, { ...fromListeners, ...env }, u), uid: u?.uid, gid: u?.gid, cwd: config.processes?.[name]?.workingDir };
      },
    });
    writeAll(files);
    return { ...(await withListeners()), units: plans };
  }

  const run = runWithCommand(config, input.command);
  const rendered = render({ run, secrets: secretRefs, outputDir: out?.path ?? '' });
  writeAll(rendered.files);
  const child: ChildSpec = { argv: rendered.argv, env: childEnv(input.env, { ...fromListeners, ...rendered.env }, user), uid: user?.uid, gid: user?.gid, cwd: config.run.workingDir };
  // run: is the run stage's one unit, like any process (a reload may restart it).
  const scope = { secrets: secretRefs, outputDir: out?.path, with: run.with ?? {} };
  return { ...(await withListeners()), units: [runAsUnit(config, rendered, child, scope, secretRefs)] };
}

/**
 * The listeners and read access to their secrets. Each type checks its secret material here
 * (keys combine, certificates match their keys), so a bad secret stops the boot before any
 * program starts.
 */
async function planListeners(config: Config, secrets: Map<string, SecretValue>, log: Log, cleanup: Cleanup): Promise<ListenerSet | undefined> {
  const planned = configuredListeners(config);
  if (planned.length === 0) return undefined;
  const secret = await checkListenerMaterial(config, (name) => secrets.get(name)?.data);
  // Lazy: nothing is minted until a listener asks; each token cached, refreshed ahead, never logged.
  const tokens = tokenSourcesFor(config, log);
  cleanup.add('forget minted tokens', () => tokens.close());
  // One bound for the whole VM: the launcher serializes quotes anyway.
  const attester = createAttester(config.endpoints.teeserver, { timeoutMs: config.fetch.attemptTimeout });
  return { list: planned.map(({ name, field, config: c }) => ({ name, field, config: c })), secret, tokens, attester, jwks: config.endpoints.jwks };
}

/** Each listener type checks its material (keys combine, certificates match); returns the reader it used. */
async function checkListenerMaterial(config: Config, read: (name: string) => Buffer | undefined): Promise<(name: string) => Buffer> {
  const secret = (name: string): Buffer => {
    const data = read(name);
    if (!data) throw new Error(`listener asked for secret ${JSON.stringify(name)}, which is not configured`);
    return data;
  };
  for (const l of configuredListeners(config)) await listenerRuntime(l.config.type).check?.(l.config, secret, l.field);
  return secret;
}

/**
 * What listeners add to the programs' environment (HTTP_PROXY for an egress proxy,
 * GCE_METADATA_HOST for the metadata server), from their configured addresses: a listener
 * that sets variables needs a fixed port, since the program is told before it binds.
 */
function listenerEnv(config: Config): Record<string, string> {
  const env: Record<string, string> = {};
  for (const l of configuredListeners(config)) {
    if (!l.type.childEnv || typeof l.config.listen !== 'string') continue;
    const address = parseHostPort(l.config.listen, `${l.field}.listen`, true);
    const vars = l.type.childEnv(l.config, address);
    if (Object.keys(vars).length === 0) continue;
    if (address.port === 0) throw configError(`${l.field}.listen: port 0 (any free port) cannot go in the program's environment (env:); choose a fixed loopback port`);
    Object.assign(env, vars);
  }
  return env;
}

/** The secrets with file: as files (one generation, swapped in whole); their paths by name. */
function materialize(out: OutputDir | undefined, secrets: ReadonlyMap<string, SecretValue>, config: Config): Map<string, string> {
  const files = [...secrets.values()].flatMap((s) => {
    const c = config.secrets[s.name]!;
    return c.file === undefined ? [] : [{ secretName: s.name, name: c.file, data: s.data, mode: c.mode ?? DEFAULT_SECRET_MODE, what: `secret ${s.name}` }];
  });
  if (files.length === 0) return new Map();
  const paths = out!.publish(files);
  return new Map(files.map((f) => [f.secretName, paths.get(f.name)!]));
}

/** run: as the one process unit of the run stage, supervised as tini does (`single`). */
function runAsUnit(config: Config, rendered: Rendered, child: ChildSpec, scope: Scope, secretRefs: Record<string, SecretRef>): ProcessPlan {
  return {
    kind: 'process',
    name: 'run',
    field: 'run',
    single: true,
    after: [],
    child,
    // Rotation starts once it is ready: a preset's check (redis: its admin socket) counts.
    ready: presetReady(rendered),
    oneshot: false,
    restart: { policy: 'never', max: 0, backoff: { initialMs: 0, maxMs: 0 } },
    stopSignal: config.run.stopSignal ?? rendered.stopSignal,
    gracePeriodMs: config.run.gracePeriod,
    signals: config.run.signals && new Set(config.run.signals),
    reload: reloadOf('run.reload', config.run.reload, rendered, scope),
    secrets: secretsUsed(rendered, secretRefs),
  };
}

/**
 * Rotation's view of the pipeline (src/refresh/): the secrets that can change, and the boot's
 * own stages (attestation, fetch, checks, materialize) to run on a new set.
 */
function refreshPlan(config: Config, secrets: Map<string, SecretValue>, out: OutputDir | undefined, log: Log, attestState: AttestState): RefreshPlan {
  const { rotating } = rotatingSecrets(config.secrets);
  return {
    config: config.refresh!,
    rotating,
    current: secrets,
    async fetch(names, abort) {
      // The launcher replaces the token file; the claims it carries must still hold.
      if (needsAttestation(config)) await attest(config, log, abort, 'debug', attestState);
      const optional = optionalSecrets(shareQuorums(config), config.secrets);
      const fetched = await fetchSecrets({ config, identity: identityContext(config), log, abort, only: names, optional });
      // A share not read this time keeps the value in use (the warning said why): not a change.
      for (const [name, v] of fetched) if (v.skipped) fetched.delete(name);
      return fetched;
    },
    async check(next) {
      checkPemSecrets([...next.values()].map((s) => ({ ...s, ...config.secrets[s.name]! })), log);
      await checkListenerMaterial(config, (name) => next.get(name)?.data);
    },
    publish: (next) => void materialize(out, next, config),
    retireOld: () => out?.retireOld(),
  };
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
