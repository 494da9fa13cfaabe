// A Confidential Space token with a custom audience (and nonces), from the launcher's teeserver
// socket: for verifiers of the collaborators' own that trust Google's attestation.
import { fetchCustomToken } from '../../attest/teeserver.ts';
import { jwtExpiry } from './expiry.ts';
import type { TokenKindSpec } from './minter.ts';

const HOUR = 3600_000;

export const attestation: TokenKindSpec = {
  perAudience: true,
  problem(config) {
    if (config.credentials !== undefined) return 'an attestation token comes from the TEE itself: remove `credentials:`';
    if (config.scopes !== undefined) return 'an attestation token has no scopes';
    return undefined;
  },
  minter(config, _credential, deps) {
    const request = { nonces: config.nonces, type: config.tokenType ?? 'OIDC' } as const;
    return async (audience) => {
      const value = await fetchCustomToken(deps.endpoints.teeserver, { ...request, audience }, deps.teeserverTimeoutMs);
      return { value, expiresAt: jwtExpiry(value, deps.now() + HOUR) };
    };
  },
};
