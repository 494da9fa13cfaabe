// `token:` wherever a listener or route sends a bearer token (docs/listeners.md, token kinds): the
// config side of the token contract in src/credentials/token-types.ts (which re-exports it).
import { z } from 'zod';
import { nonces } from '../fields.ts';

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
