// IAM credentials generateAccessToken: a federated principal impersonates a service account
// that lists it as a workload identity user.
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
