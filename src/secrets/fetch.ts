// All secrets, in parallel (at most fetch.concurrency at once), under one fetch.deadline that
// covers token exchanges, requests and retries. Each secret is read with the identity it names;
// an identity's token exchange happens once and is shared by its secrets.
import type { Config } from '../config/schema.ts';
import { createIdentities, describeCredential, type Identity, type IdentityContext } from '../credentials/identities.ts';
import { dataError, InitError } from '../lib/errors.ts';
import { EXIT, type ExitCode } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { crc32cMatches } from './crc32c.ts';
import { retrying, type RetryPolicy } from '../lib/retry.ts';
import { readSecretFile } from './sources/file.ts';
import { accessUrl, SecretManagerAccess } from './sources/gcp.ts';
import { MAX_PAYLOAD } from './limits.ts';

export interface SecretValue {
  name: string;
  data: Buffer;
  /** Where it came from, for logs: the resolved version name or the file path. */
  origin: string;
  /** An optional secret that could not be read (data is empty): the status and reason it failed with. */
  skipped?: { exitCode: ExitCode; why: string } | undefined;
}

export interface FetchOptions {
  config: Config;
  identity: IdentityContext;
  log: Log;
  abort: AbortSignal;
  now?: () => number;
  /** Only these secrets (a refresh reads those that can change); default: all. */
  only?: readonly string[] | undefined;
  /**
   * Secrets that may fail (t-of-n shares), by name → what they are for: one that cannot be
   * read is skipped with a warning and comes back empty, with `skipped` (src/secrets/quorum.ts).
   */
  optional?: ReadonlyMap<string, string> | undefined;
}

/** A concurrency limiter: at most `n` of the functions run at once. */
function limiter(n: number) {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((resolve) => queue.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

export async function fetchSecrets(options: FetchOptions): Promise<Map<string, SecretValue>> {
  const { config, log, abort } = options;
  const now = options.now ?? Date.now;
  const policy: RetryPolicy = {
    deadline: now() + config.fetch.deadline,
    deadlineMs: config.fetch.deadline,
    initialBackoffMs: config.fetch.backoff.initial,
    maxBackoffMs: config.fetch.backoff.max,
    attemptTimeoutMs: Math.min(config.fetch.attemptTimeout, config.fetch.deadline),
    now,
  };
  const only = options.only && new Set(options.only);
  const entries = Object.entries(config.secrets).filter(([name]) => !only || only.has(name));
  const gcpNames = new Set(entries.flatMap(([, s]) => (s.source === 'gcp' ? [s.credentials] : [])));
  const access = new SecretManagerAccess(config.endpoints.secretmanager);

  // Token exchanges (one per identity) start first, all at once; each secret's read awaits its own.
  let identities = new Map<string, Identity>();
  const tokens = new Map<string, Promise<unknown>>();
  if (gcpNames.size > 0) {
    // Building an identity is local, except ADC, which may ask the metadata server or the network.
    identities = await retrying('credentials', () => createIdentities(config.credentials, gcpNames, options.identity), policy, abort, log);
    for (const [name, identity] of identities) {
      const what = `credentials ${describeCredential(name, config.credentials[name]!, config.endpoints)}`;
      const p = retrying(what, () => identity.client.getAccessToken(), policy, abort, log);
      p.catch(() => {}); // observed by the secrets that await it
      tokens.set(name, p);
    }
  }

  const limit = limiter(config.fetch.concurrency);
  const started = now();
  const read = (name: string, s: (typeof entries)[number][1]) =>
    limit(async (): Promise<SecretValue> => {
      if (s.source === 'file') return check(name, await readSecretFile(name, s.path), s.path, s.file !== undefined);
      await tokens.get(s.credentials);
      const identity = identities.get(s.credentials)!;
      const what = `secret ${name} (${s.ref}, read as ${identity.label} at ${accessUrl(s.ref, config.endpoints.secretmanager)})`;
      const v = await retrying(what, () => access.access(identity, s.ref, policy.attemptTimeoutMs), policy, abort, log);
      if (v.crc32c === undefined) log.warn({ secret: name, version: v.name }, `secret ${name}: Secret Manager sent no CRC32C; integrity not verified`);
      else if (!crc32cMatches(v.data, v.crc32c)) {
        v.data.fill(0);
        throw dataError(`secret ${name} (${v.name}): payload fails its CRC32C check: corrupted in transit; not used`);
      }
      log.debug({ secret: name, version: v.name, bytes: v.data.length, identity: identity.name }, `fetched secret ${name}`);
      return check(name, v.data, v.name, s.file !== undefined);
    });
  const values = await Promise.all(entries.map(([name, s]) => {
    const why = options.optional?.get(name);
    return why === undefined ? read(name, s) : readOptional(name, s, why, () => read(name, s), abort, log);
  }));
  const skipped = values.filter((v) => v.skipped).length;
  log.info({ secrets: values.length - skipped, ...(skipped ? { skipped } : {}), identities: identities.size, ms: now() - started }, 'secrets fetched');
  return new Map(values.map((v) => [v.name, v]));
}

/**
 * A share that cannot be read is skipped, not fatal: any of the failures a read ends with
 * (denied, missing, disabled, unavailable past the deadline, corrupted), an empty payload too.
 * A bug (70) and SIGTERM still end the boot.
 */
async function readOptional(
  name: string,
  s: Config['secrets'][string],
  what: string,
  read: () => Promise<SecretValue>,
  abort: AbortSignal,
  log: Log,
): Promise<SecretValue> {
  const from = s.source === 'gcp' ? `collaborator ${s.credentials}` : `file ${s.path}`;
  const skip = (exitCode: ExitCode, why: string): SecretValue => {
    log.warn({ secret: name, from, exitCode, why }, `secret ${name} (from ${from}) skipped: ${why}; it is ${what}`);
    return { name, data: Buffer.alloc(0), origin: 'not read', skipped: { exitCode, why } };
  };
  try {
    const v = await read();
    return v.data.length > 0 ? v : skip(EXIT.data, `secret ${name} (${v.origin}) is empty`);
  } catch (err) {
    if (abort.aborted || !(err instanceof InitError) || err.exitCode === EXIT.software) throw err;
    return skip(err.exitCode, err.message);
  }
}

function check(name: string, data: Buffer, origin: string, asFile: boolean): SecretValue {
  if (data.length > MAX_PAYLOAD) throw dataError(`secret ${name} (${origin}) is ${data.length} bytes: more than a secret can hold (64 KiB)`);
  if (asFile && data.length === 0) throw dataError(`secret ${name} (${origin}) is empty, but secrets.${name}.file expects content`);
  return { name, data, origin };
}
