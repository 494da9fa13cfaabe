// What a token kind needs to mint: the configured credential, clients built from it on first
// use (google-auth-library loads lazily), and the limits of one attempt.
import type { CredentialConfig, Endpoints } from '../../config/schema.ts';
import type { Identity, IdentityOptions } from '../identities.ts';
import type { Token, TokenConfig } from '../token-types.ts';

export interface MintDeps {
  endpoints: Endpoints;
  /** A client for a configured credential, built once per (name, options). */
  identity(name: string, options?: IdentityOptions): Promise<Identity>;
  /** One attempt's time limit (the retry loop owns the overall deadline). */
  attemptTimeoutMs: number;
  teeserverTimeoutMs: number;
  now: () => number;
}

/** Mints one token for an audience (`''` for kinds without one). */
export type Mint = (audience: string) => Promise<Token>;

export interface TokenKindSpec {
  /** Why this config cannot mint, or undefined. Checked at `tee-init check` and at start. */
  problem(config: TokenConfig, credential: CredentialConfig | undefined): string | undefined;
  /** Whether the audience varies per request (then cached per audience). */
  perAudience: boolean;
  minter(config: TokenConfig, credential: CredentialConfig | undefined, deps: MintDeps): Mint;
}
