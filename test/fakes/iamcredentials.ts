// IAM credentials generateAccessToken: a federated principal impersonates a service account
// that lists it as a workload identity user.
import type { AttestationKey } from './attestation.ts';
import { CLOUD_PLATFORM } from './sts.ts';
import { googleError, UNAUTHENTICATED_MESSAGE } from './errors.ts';
import type { GcpWorld, Outcome } from './gcp.ts';
import { grants, type Principal, type TokenStore } from './principals.ts';

const MAX_LIFETIME_S = 3600;

export function generateAccessToken(
  world: GcpWorld,
  tokens: TokenStore,
  caller: Principal | undefined,
  email: string,
  body: Buffer,
  lifetimeMs: number | undefined,
): Outcome {
  if (!caller) return { status: 401, body: googleError(401, UNAUTHENTICATED_MESSAGE) };
  let request: { scope?: unknown; lifetime?: unknown };
  try {
    request = JSON.parse(body.toString('utf8')) as typeof request;
  } catch {
    return { status: 400, body: googleError(400, 'Invalid JSON payload received.') };
  }
  if (!Array.isArray(request.scope) || !request.scope.includes(CLOUD_PLATFORM)) {
    return { status: 400, body: googleError(400, `Request contains an invalid argument: scope must include ${CLOUD_PLATFORM}.`) };
  }
  let lifetimeS = MAX_LIFETIME_S;
  if (request.lifetime !== undefined) {
    const m = typeof request.lifetime === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(request.lifetime) : null;
    lifetimeS = m ? Number(m[1]) : NaN;
    if (!(lifetimeS > 0 && lifetimeS <= MAX_LIFETIME_S)) {
      return { status: 400, body: googleError(400, `Invalid lifetime ${JSON.stringify(request.lifetime)}: at most ${MAX_LIFETIME_S}s.`) };
    }
  }
  const sa = world.serviceAccounts?.[email];
  // Google answers the same for a missing account and a denied one.
  if (caller.kind !== 'federated' || !sa || !sa.impersonators.some((g) => grants(g, caller))) {
    return {
      status: 403,
      body: googleError(403, "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist)."),
    };
  }
  const expireTime = new Date(Date.now() + lifetimeS * 1000);
  return {
    status: 200,
    body: {
      accessToken: tokens.issue({ kind: 'serviceAccount', email }, lifetimeMs ?? lifetimeS * 1000),
      expireTime: expireTime.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    },
  };
}

/** Issuer of Google-signed ID tokens, and where its public keys are published. */
export const GOOGLE_ISSUER = 'https://accounts.google.com';
export const GOOGLE_CERTS_PATH = '/oauth2/v3/certs';

/** A stable numeric id per service account, as Google's `sub`/`azp` carry. */
export function uniqueId(email: string): string {
  let h = 0n;
  for (const c of Buffer.from(email)) h = (h * 131n + BigInt(c)) % 10n ** 20n;
  return `1${h.toString().padStart(20, '0')}`;
}

/**
 * IAM credentials generateIdToken: a Google-signed OIDC token for a service account. The caller
 * needs iam.serviceAccounts.getOpenIdToken on it, which roles/iam.workloadIdentityUser (the
 * world's `impersonators`) includes: a federated principal asks with its STS token directly.
 */
export async function generateIdToken(
  world: GcpWorld,
  caller: Principal | undefined,
  email: string,
  body: Buffer,
  key: AttestationKey,
  options: { lifetimeS: number; now: () => number },
): Promise<Outcome> {
  if (!caller) return { status: 401, body: googleError(401, UNAUTHENTICATED_MESSAGE) };
  let request: { audience?: unknown; includeEmail?: unknown; delegates?: unknown };
  try {
    request = JSON.parse(body.toString('utf8')) as typeof request;
  } catch {
    return { status: 400, body: googleError(400, 'Invalid JSON payload received.') };
  }
  if (typeof request.audience !== 'string' || request.audience === '') {
    return { status: 400, body: googleError(400, 'Request contains an invalid argument: audience is required.') };
  }
  const sa = world.serviceAccounts?.[email];
  if (caller.kind !== 'federated' || !sa || !sa.impersonators.some((g) => grants(g, caller))) {
    return {
      status: 403,
      body: googleError(403, "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist)."),
    };
  }
  const iat = Math.floor(options.now() / 1000);
  const id = uniqueId(email);
  const claims = {
    iss: GOOGLE_ISSUER,
    aud: request.audience,
    azp: id,
    sub: id,
    iat,
    exp: iat + options.lifetimeS,
    ...(request.includeEmail === true ? { email, email_verified: true } : {}),
  };
  return { status: 200, body: { token: await key.sign(claims) } };
}
