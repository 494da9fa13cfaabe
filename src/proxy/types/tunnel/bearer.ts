// Server mode's optional bearer check, for deployments with no front door doing it: a JWT
// (Google-signed ID token by default) verified against a JWKS URL, audience, issuer, expiry,
// and optionally the caller's email. The token itself is never logged.
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { TunnelServerConfig } from '../../../config/listeners/tunnel.ts';

export type BearerCheck = (authorization: string | undefined) => Promise<BearerResult>;
export type BearerResult = { ok: true; subject: string | undefined; email: string | undefined } | { ok: false; reason: string };

export function bearerCheck(config: NonNullable<TunnelServerConfig['bearer']>): BearerCheck {
  const jwks = createRemoteJWKSet(new URL(config.jwks), { timeoutDuration: 5_000, cooldownDuration: 30_000 });
  const audience = config.audience;
  const emails = config.emails ? new Set(config.emails.map((e) => e.toLowerCase())) : undefined;
  return async (authorization) => {
    const m = /^Bearer +([A-Za-z0-9._~+/=-]+)\s*$/i.exec(authorization ?? '');
    if (!m) return { ok: false, reason: authorization === undefined ? 'no Authorization header' : 'Authorization is not "Bearer <token>"' };
    try {
      const { payload } = await jwtVerify(m[1]!, jwks, {
        audience,
        issuer: config.issuer,
        clockTolerance: config.clockTolerance / 1000,
        requiredClaims: ['exp'],
      });
      const email = typeof payload.email === 'string' ? payload.email : undefined;
      if (emails && !(email && payload.email_verified === true && emails.has(email.toLowerCase()))) {
        return { ok: false, reason: `caller ${email ?? '(no verified email)'} is not in bearer.emails` };
      }
      return { ok: true, subject: payload.sub, email };
    } catch (err) {
      return { ok: false, reason: describe(err, config.jwks) };
    }
  };
}

/** jose's reason, naming the claim at fault, or the JWKS URL and the network error; never the token. */
function describe(err: unknown, jwksUrl: string): string {
  if (err instanceof errors.JWTClaimValidationFailed) return `${err.code}: ${err.claim} ${err.reason}`;
  if (err instanceof errors.JWKSTimeout) return `the JWKS ${jwksUrl} did not answer in time (bearer.jwks)`;
  if (err instanceof errors.JOSEError) return `${err.code}: ${err.message}`;
  // fetch() failed: the keys could not be read at all. "fetch failed" alone says nothing.
  const cause = (err as { cause?: NodeJS.ErrnoException } | undefined)?.cause;
  const why = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return `cannot read the JWKS ${jwksUrl} (bearer.jwks): ${why}`;
}
