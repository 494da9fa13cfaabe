// Tokens the init mints for its listeners and the program's outbound calls (docs/listeners.md, token
// kinds): the contract between src/credentials (which mints, caches and refreshes them) and
// the listener types that put them on the wire. A token value is a secret: never logged.
import { z } from 'zod';
import { nonces } from '../config/fields.ts';

/** The OAuth scope access tokens get when none is configured. */
export const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

export const TOKEN_KINDS = ['id-token', 'access-token', 'attestation'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

const credentialsName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, { error: 'must be the name of a configured credential' });

/** `token:` wherever a listener or route sends a bearer token. */
export const tokenConfigSchema = z.strictObject({
  kind: z.enum(TOKEN_KINDS, { error: `kind must be one of ${TOKEN_KINDS.join(', ')}` }),
  /** The credential that mints it (id-token, access-token). */
  credentials: credentialsName.optional(),
  /** id-token: default `https://HOST` of the request; attestation: required. */
  audience: z.string().min(1).max(512).optional(),
  /** access-token: OAuth scopes (default cloud-platform). */
  scopes: z.array(z.string().min(1)).min(1).optional(),
  /** attestation: nonces (10-74 bytes each, at most 6) and the token type. */
  nonces: nonces.optional(),
  tokenType: z.enum(['OIDC', 'PKI']).optional(),
});
export type TokenConfig = z.infer<typeof tokenConfigSchema>;

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
