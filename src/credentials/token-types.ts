// Tokens the init mints for its listeners and the program's outbound calls (docs/listeners.md, token
// kinds): the contract between src/credentials (which mints, caches and refreshes them) and
// the listener types that put them on the wire. A token value is a secret: never logged.
// The `token:` config (a schema) is the config's; re-exported here for the minters and the wire.
import type { TokenConfig } from '../config/listeners/token.ts';

export { CLOUD_PLATFORM, TOKEN_KINDS, type TokenConfig, tokenConfigSchema, type TokenKind } from '../config/listeners/token.ts';

export interface Token {
  /** The bearer token itself: a secret. */
  value: string;
  /** When it stops being valid, ms since the epoch. */
  expiresAt: number;
}

/** One configured token: cached per audience, refreshed before expiry, one mint at a time. */
export interface TokenSource {
  /** `audience` overrides the configured one (id-token: per request). */
  get(audience?: string): Promise<Token>;
}

/** What the config says about a credential's Google account (for the metadata server). */
export interface AccountInfo {
  /** The service account it acts as, if any. */
  email?: string | undefined;
  /** The service account's project, if known. */
  projectId?: string | undefined;
  /** The number of the project that owns the credential's workload identity pool, if any. */
  projectNumber?: string | undefined;
}

/** Made once per init from the configured credentials; hands out token sources. */
export interface TokenSources {
  source(config: TokenConfig): TokenSource;
  /** Undefined for a name that is not configured. Optional: test doubles may leave it out. */
  account?(credentials: string): AccountInfo | undefined;
}
