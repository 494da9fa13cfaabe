// The boot (docs/design.md, "Plan, then boot"): it executes a plan (src/plan/) that already
// holds every decision and passed every check that needs no network:
//   output dir -> attest -> credentials + fetch -> checks on the secrets -> materialize -> files
// and hands the run stage its units, listeners, health endpoint and rotation. Loaded lazily by
// main.ts: the plain init never pays for YAML, zod, jose or the Google clients.
import { defaultTokenOptions, readAttestationToken } from './attest/token-file.ts';
import { checkClaims, checkDebug, claimsSummary } from './attest/claims.ts';
import { createAttester } from './attest/attester.ts';
import type { Cleanup } from './lib/cleanup.ts';
import type { Config } from './config/schema.ts';
import { configuredListeners } from './config/schema-listeners.ts';
import { rotatingSecrets } from './config/schema-refresh.ts';
import type { HealthConfig } from './config/schema-run.ts';
import { tokenSourcesFor } from './credentials/tokens/index.ts';
import type { Log } from './lib/log.ts';
import { OutputDir } from './materialize/output-dir.ts';
import { checkPemSecrets } from './lib/pem.ts';
import type { Plan } from './plan/index.ts';
import type { ListenerSet } from './proxy/start.ts';
import { listenerRuntime } from './proxy/types/index.ts';
import type { RefreshPlan } from './refresh/refresher.ts';
import type { ProcessPlan } from './run/render-units.ts';
import { fetchSecrets, type SecretValue } from './secrets/fetch.ts';
import { checkQuorums, optionalSecrets, type Quorum } from './secrets/quorum.ts';

const DEFAULT_SECRET_MODE = 0o400;

export interface BootInput {
  log: Log;
  cleanup: Cleanup;
  abort: AbortSignal;
}

/** What the run stage gets: every program as a unit (run: is the unit named run), and what runs beside. */
export interface Booted {
  /** In start order. */
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

export async function boot(plan: Plan, input: BootInput): Promise<Booted> {
  const { log, cleanup, abort } = input;
  const { config } = plan;
  const runs = config.processes ? { processes: Object.keys(config.processes) } : { preset: config.run.preset };
  log.info({ config: plan.path, secrets: Object.keys(config.secrets).length, ...runs }, 'config loaded');

  const out = plan.output.needed
    ? OutputDir.create({ dir: config.output.dir, fresh: plan.output.path, allowNonTmpfs: config.output.allowNonTmpfs, owner: plan.ids.owner }, cleanup, log)
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
  const listeners = await planListeners(config, secrets, log, cleanup);
  materialize(out, secrets, config);
  for (const f of plan.files) out!.write(f.name, Buffer.from(f.content), f.mode, `rendered file ${f.name}`);
  return {
    units: plan.units,
    listeners,
    health: config.health,
    refresh: config.refresh && refreshPlan(config, secrets, out, log, attestState),
  };
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
