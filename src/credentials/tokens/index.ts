// Token sources (src/credentials/token-types.ts): one per distinct `token:` config, each with a
// cache per audience, minting through the kind's spec under tee-init's retry loop (backoff and
// a deadline, as the secret fetch). Clients for the credentials are built on first use.
import type { Config, CredentialConfig } from '../../config/schema.ts';
import { configError } from '../../lib/errors.ts';
import type { Log } from '../../lib/log.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn } from '../../lib/log-limit.ts';
import { errorText, UnusableAnswer } from '../../lib/classify.ts';
import { retrying } from '../../lib/retry.ts';
import { defaultTokenOptions } from '../../attest/token-file.ts';
import { createIdentities, type Identity, type IdentityContext, type IdentityOptions } from '../identities.ts';
import type { AccountInfo, Token, TokenConfig, TokenKind, TokenSource, TokenSources } from '../token-types.ts';
import { accessToken } from './access-token.ts';
import { attestation } from './attestation.ts';
import { DEFAULT_TIMING, TokenCache, type CacheStats, type CacheTiming } from './cache.ts';
import { idToken } from './id-token.ts';
import type { MintDeps, TokenKindSpec } from './minter.ts';

/** The token kinds: how each is checked and minted. */
export const TOKEN_KIND_SPECS: Record<TokenKind, TokenKindSpec> = {
  'id-token': idToken,
  'access-token': accessToken,
  attestation,
};

export interface TokenRetry {
  /** One mint, retries included, gives up after this long. */
  deadlineMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  attemptTimeoutMs: number;
}

export interface TokenContext extends IdentityContext {
  log: Log;
  retry: TokenRetry;
  now?: () => number;
  timing?: Partial<Omit<CacheTiming, 'now'>>;
}

/** What a credential's config tells about its account: no request is made. */
export function accountOf(credential: CredentialConfig): AccountInfo {
  if (credential.type === 'adc') return {};
  const sa = credential.serviceAccount;
  return {
    email: sa,
    projectId: sa === undefined ? undefined : /@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/.exec(sa)?.[1],
    projectNumber: /^projects\/(\d+)\//.exec(credential.provider)?.[1],
  };
}

export interface TokenSourcesStats extends CacheStats {
  /** Distinct token configs in use (bounded by the config: no program input makes one). */
  sources: number;
  /** Tokens (or mints in flight) held over all sources: at most `maxEntries` audiences each. */
  cached: number;
}

export interface ManagedTokenSources extends TokenSources {
  /** Totals over every source, for /metrics and tests. */
  stats(): TokenSourcesStats;
  /** Cancels mints in flight and forgets every token. */
  close(): void;
}

/** Why `token` cannot be minted with the configured credentials, or undefined (for `tee-init check`). */
export function tokenConfigProblem(token: TokenConfig, credentials: Config['credentials']): string | undefined {
  const credential = token.credentials === undefined ? undefined : credentials[token.credentials];
  if (token.credentials !== undefined && !credential) return `credentials ${token.credentials} is not configured under credentials:`;
  const spec = TOKEN_KIND_SPECS[token.kind];
  if (!spec.perAudience && token.audience !== undefined) return `a ${token.kind} has no audience`;
  if (token.kind !== 'attestation' && (token.nonces !== undefined || token.tokenType !== undefined)) return `nonces and tokenType belong to kind attestation, not ${token.kind}`;
  if (token.kind !== 'access-token' && token.scopes !== undefined) return `scopes belong to kind access-token, not ${token.kind}`;
  return spec.problem(token, credential);
}

/**
 * A token goes into an HTTP header as it is: one printable ASCII word (a JWT, an OAuth token).
 * Anything else from a minting service is refused here rather than throwing where it is sent.
 */
const TOKEN_VALUE = /^[\x21-\x7e]{1,16384}$/;

/** How a token config is named in messages (never a token). */
export function describeToken(token: TokenConfig): string {
  return `${token.kind}${token.credentials ? ` of credentials ${token.credentials}` : ''}`;
}

export function createTokenSources(credentials: Config['credentials'], ctx: TokenContext): ManagedTokenSources {
  const now = ctx.now ?? Date.now;
  const timing: CacheTiming = { ...DEFAULT_TIMING, ...ctx.timing, now };
  const closed = new AbortController();
  const identities = new Map<string, Promise<Identity>>();
  const sources = new Map<string, { source: TokenSource; cache: TokenCache }>();
  // A program that names new audiences (the egress proxy's hosts, the metadata server's
  // ?audience=) causes one mint each: their debug lines are rate-limited.
  const minted = limitedWarn({ warn: ctx.log.debug.bind(ctx.log) } as unknown as Log, 'token mints', { burst: 100, windowMs: 60_000 });
  // So are the retries and failed refreshes of those mints (a line each while Google fails).
  const retryLog = { warn: limitedWarn(ctx.log, 'token mint retries', LOG_LIMIT_DEFAULTS) } as unknown as Log;
  const refreshFailed = limitedWarn(ctx.log, 'token refresh failures', LOG_LIMIT_DEFAULTS);

  const deps: MintDeps = {
    endpoints: ctx.endpoints,
    attemptTimeoutMs: ctx.retry.attemptTimeoutMs,
    teeserverTimeoutMs: ctx.teeserverTimeoutMs,
    now,
    identity(name: string, options: IdentityOptions = {}) {
      const key = `${name} ${JSON.stringify(options)}`;
      let p = identities.get(key);
      if (!p) {
        p = createIdentities(credentials, [name], ctx, options).then((m) => m.get(name)!);
        p.catch(() => identities.delete(key));
        identities.set(key, p);
      }
      return p;
    },
  };

  const build = (config: TokenConfig): { source: TokenSource; cache: TokenCache } => {
    const problem = tokenConfigProblem(config, credentials);
    if (problem) throw configError(`token ${describeToken(config)}: ${problem}`);
    const spec = TOKEN_KIND_SPECS[config.kind];
    const credential: CredentialConfig | undefined = config.credentials === undefined ? undefined : credentials[config.credentials];
    const mint = spec.minter(config, credential, deps);
    const what = (audience: string) => `${describeToken(config)}${audience ? ` for audience ${audience}` : ''}`;
    const cache = new TokenCache(
      (audience) => {
        const policy = { deadline: now() + ctx.retry.deadlineMs, deadlineMs: ctx.retry.deadlineMs, initialBackoffMs: ctx.retry.initialBackoffMs, maxBackoffMs: ctx.retry.maxBackoffMs, attemptTimeoutMs: ctx.retry.attemptTimeoutMs, now };
        return retrying(what(audience), () => mint(audience), policy, closed.signal, retryLog).then((token) => {
          if (!TOKEN_VALUE.test(token.value)) throw new UnusableAnswer(`${what(audience)}: the service answered a token that is not one printable word; refused`);
          minted({ kind: config.kind, credentials: config.credentials, audience, validForS: Math.round((token.expiresAt - now()) / 1000) }, `minted ${what(audience)}`);
          return token;
        });
      },
      timing,
      (audience, err) => refreshFailed({ kind: config.kind, credentials: config.credentials, audience }, `refreshing ${what(audience)} failed; the current token stays in use: ${errorText(err)}`),
    );
    const source: TokenSource = {
      get(audience?: string): Promise<Token> {
        if (closed.signal.aborted) return Promise.reject(new Error('token sources are closed'));
        if (!spec.perAudience) return cache.get('');
        const aud = audience ?? config.audience;
        if (!aud) return Promise.reject(configError(`token ${describeToken(config)}: no audience configured or given`));
        return cache.get(aud);
      },
    };
    return { source, cache };
  };

  return {
    source(config) {
      const key = JSON.stringify(config);
      let entry = sources.get(key);
      if (!entry) sources.set(key, (entry = build(config)));
      return entry.source;
    },
    account(name) {
      const c = credentials[name];
      return c === undefined ? undefined : accountOf(c);
    },
    stats() {
      const total: TokenSourcesStats = { hits: 0, mints: 0, failures: 0, sources: sources.size, cached: 0 };
      for (const { cache } of sources.values()) {
        for (const k of ['hits', 'mints', 'failures'] as const) total[k] += cache.stats[k];
        total.cached += cache.size;
      }
      return total;
    },
    close() {
      closed.abort(new Error('token sources closed'));
      for (const { cache } of sources.values()) cache.clear();
    },
  };
}

/** The token sources of a loaded config: its credentials, endpoints, and fetch timing (deadline, backoff). */
export function tokenSourcesFor(config: Config, log: Log): ManagedTokenSources {
  return createTokenSources(config.credentials, {
    tokenFile: config.attestation.tokenFile,
    defaultToken: defaultTokenOptions(config),
    allowDebug: config.attestation.allowDebug,
    endpoints: config.endpoints,
    teeserverTimeoutMs: config.fetch.attemptTimeout,
    log,
    retry: {
      deadlineMs: config.fetch.deadline,
      initialBackoffMs: config.fetch.backoff.initial,
      maxBackoffMs: config.fetch.backoff.max,
      attemptTimeoutMs: config.fetch.attemptTimeout,
    },
  });
}
