// STS token exchange (RFC 8693 as Google runs it for workload identity federation):
// attestation JWT in, federated access token out, after the provider's checks.
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { Claims } from './attestation.ts';
import { oauthError } from './errors.ts';
import type { GcpWorld, Outcome } from './gcp.ts';
import { poolOf, type Principal, type TokenStore } from './principals.ts';

export const GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const DEFAULT_ISSUER = 'https://confidentialcomputing.googleapis.com';
const DEFAULT_AUDIENCES = ['https://sts.googleapis.com'];
const AUDIENCE = /^\/\/iam\.googleapis\.com\/(projects\/[^/]+\/locations\/global\/workloadIdentityPools\/[^/]+\/providers\/[^/]+)$/;

const bad = (error: string, description: string): Outcome => ({ status: 400, body: oauthError(error, description) });
const trimSlash = (s: string) => s.replace(/\/+$/, '');

export interface StsResult extends Outcome {
  principal?: Principal;
}

export async function exchange(world: GcpWorld, tokens: TokenStore, form: URLSearchParams, lifetimeMs: number): Promise<StsResult> {
  if (form.get('grant_type') !== GRANT_TYPE) return bad('unsupported_grant_type', `Invalid value for "grant_type": ${form.get('grant_type')}`);
  if (form.get('requested_token_type') !== ACCESS_TOKEN_TYPE) {
    return bad('invalid_request', `Invalid value for "requested_token_type": ${form.get('requested_token_type')}`);
  }
  if (form.get('subject_token_type') !== JWT_TOKEN_TYPE) {
    return bad('invalid_request', `Invalid value for "subject_token_type": ${form.get('subject_token_type')}`);
  }
  const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
  if (!scopes.includes(CLOUD_PLATFORM)) return bad('invalid_scope', `Scope ${CLOUD_PLATFORM} is required; got "${form.get('scope') ?? ''}"`);

  const audience = form.get('audience') ?? '';
  const providerName = AUDIENCE.exec(audience)?.[1];
  const provider = providerName === undefined ? undefined : world.providers[providerName];
  if (providerName === undefined || provider === undefined) {
    return bad(
      'invalid_target',
      'The target service indicated by the "audience" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn\'t exist.',
    );
  }

  const subjectToken = form.get('subject_token');
  if (!subjectToken) return bad('invalid_request', 'The "subject_token" parameter is required.');
  let claims: Claims;
  try {
    claims = (await jwtVerify(subjectToken, createLocalJWKSet(world.jwks), { algorithms: ['RS256'] })).payload as Claims;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_JWT_EXPIRED') return bad('invalid_grant', 'ID Token expired.');
    if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' || code === 'ERR_JWKS_NO_MATCHING_KEY') {
      return bad('invalid_grant', 'Invalid ID Token: the signature does not match any key of the issuer.');
    }
    return bad('invalid_grant', `Unable to parse the ID Token: ${(err as Error).message}`);
  }
  if (trimSlash(String(claims.iss)) !== trimSlash(provider.issuer ?? DEFAULT_ISSUER)) {
    return bad('invalid_grant', `The issuer in ID Token ${String(claims.iss)} does not match the expected ones.`);
  }
  const allowed = provider.allowedAudiences ?? DEFAULT_AUDIENCES;
  const tokenAud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!tokenAud.some((a) => typeof a === 'string' && allowed.includes(a))) {
    return bad('invalid_grant', `The audience in ID Token [${tokenAud.join(', ')}] does not match the expected audience.`);
  }
  let verdict: boolean | string;
  try {
    verdict = provider.condition ? provider.condition(claims) : true;
  } catch (err) {
    verdict = `the condition failed to evaluate: ${(err as Error).message}`;
  }
  if (verdict !== true) {
    const why = typeof verdict === 'string' ? ` (${verdict})` : '';
    return bad('invalid_grant', `The given credential is rejected by the attribute condition.${why}`);
  }
  if (typeof claims.sub !== 'string') return bad('invalid_grant', 'The ID Token has no "sub" claim to map to google.subject.');

  const principal: Principal = { kind: 'federated', provider: providerName, pool: poolOf(providerName), subject: claims.sub };
  return {
    status: 200,
    principal,
    body: {
      access_token: tokens.issue(principal, lifetimeMs),
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: 3600,
    },
  };
}
