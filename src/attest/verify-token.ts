// The client side of attested TLS: is this token a Confidential Space token, signed by the
// attestation service, for our audience, still valid, bound to OUR connection (its TLS exporter
// value among the nonces), and do its claims say what we require (image digest, swname,
// dbgstat...)? Used by `type: tls` client mode with `verify.attestation` and by `tee-init verify`.
// A refusal is one line naming the claim at fault; the token itself is never logged.
import { createRemoteJWKSet, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import { type KeyObject, X509Certificate } from 'node:crypto';
import { checkEndpointUrl } from '../config/endpoints.ts';
import { checkClaims, type Expected } from './claims.ts';

export const ATTESTATION_ISSUER = 'https://confidentialcomputing.googleapis.com';

export interface VerifyAttestationOptions {
  audience: string;
  /** Claim path -> expected value, as attestation.require. */
  require: Record<string, Expected>;
  /** The JWKS URL; default: the issuer's, from its OpenID discovery document. */
  jwks?: string | undefined;
  /** Where the root of PKI tokens is published (PEM); default the issuer's /.well-known/attestation-pki-root. */
  pkiRoot?: string | undefined;
  /** Accept a debug image (dbgstat other than disabled-since-boot). Default false. */
  allowDebug?: boolean | undefined;
  /** The config path for messages (`listeners.db.verify.attestation`). */
  field: string;
}

export class AttestationRefused extends Error {
  readonly code = 'ERR_TEE_ATTESTATION_REFUSED';
}

export type AttestationVerifier = (jwt: string, nonce: string) => Promise<JWTPayload>;

/** Where the keys are: `jwks`, else the discovery document of the issuer (fetched once, on first use). */
function keySet(jwks: string | undefined) {
  let keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const discover = async () => {
    const url = `${ATTESTATION_ISSUER}/.well-known/openid-configuration`;
    let doc: { jwks_uri?: unknown };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      doc = (await res.json()) as { jwks_uri?: unknown };
    } catch (err) {
      throw new AttestationRefused(`cannot read the attestation issuer's discovery document ${url}: ${(err as Error).message} (set endpoints.jwks to its JWKS URL)`);
    }
    if (typeof doc.jwks_uri !== 'string' || checkEndpointUrl(doc.jwks_uri)) throw new AttestationRefused(`${url} names no usable https jwks_uri`);
    return doc.jwks_uri;
  };
  return () => {
    keys ??= (jwks ? Promise.resolve(jwks) : discover()).then(
      (u) => createRemoteJWKSet(new URL(u), { timeoutDuration: 10_000, cooldownDuration: 30_000 }),
      (err: unknown) => {
        keys = undefined; // try the discovery again next time
        throw err;
      },
    );
    return keys;
  };
}

export function createAttestationVerifier(o: VerifyAttestationOptions): AttestationVerifier {
  const keys = keySet(o.jwks);
  const root = pinnedRoot(o.pkiRoot ?? `${ATTESTATION_ISSUER}/.well-known/attestation-pki-root`);
  const require = o.allowDebug ? o.require : { dbgstat: 'disabled-since-boot', ...o.require };
  return async (jwt, nonce) => {
    let payload: JWTPayload;
    try {
      const header = decodeProtectedHeader(jwt);
      // A PKI token carries its certificate chain (x5c): its key is the leaf's, once the chain
      // is shown to end at the pinned root. An OIDC token's key comes from the JWKS.
      const checks = { issuer: ATTESTATION_ISSUER, audience: o.audience, requiredClaims: ['exp'] };
      if (header.x5c !== undefined) ({ payload } = await jwtVerify(jwt, await pkiKey(header.x5c, await root()), { ...checks, algorithms: ['RS256', 'ES256'] }));
      else ({ payload } = await jwtVerify(jwt, await keys(), { ...checks, algorithms: ['RS256'] }));
    } catch (err) {
      throw err instanceof AttestationRefused ? err : new AttestationRefused(describe(err, o.audience));
    }
    const nonces = payload.eat_nonce === undefined ? [] : [payload.eat_nonce].flat();
    if (!nonces.includes(nonce)) {
      throw new AttestationRefused('eat_nonce does not hold this connection\'s TLS exporter value: the token was issued for another connection (replayed or relayed)');
    }
    try {
      checkClaims(payload, require, `${o.field}.require`);
    } catch (err) {
      throw new AttestationRefused((err as Error).message + (o.allowDebug || !/claim dbgstat /.test((err as Error).message) ? '' : ` (a debug image lets its operator read memory; allowDebug: true accepts it)`));
    }
    return payload;
  };
}

/** The root certificate PKI tokens must chain to, fetched once (PEM) from `url`. */
function pinnedRoot(url: string): () => Promise<X509Certificate> {
  let root: Promise<X509Certificate> | undefined;
  return () => {
    root ??= (async () => {
      const problem = checkEndpointUrl(url);
      if (problem) throw new AttestationRefused(`PKI root ${url}: ${problem}`);
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return new X509Certificate(await res.text());
      } catch (err) {
        throw new AttestationRefused(`cannot read the attestation PKI root ${url}: ${(err as Error).message}`);
      }
    })();
    root.catch(() => (root = undefined)); // fetched again next time
    return root;
  };
}

/** The leaf's public key, once every certificate is in date, signed by the next, and the last is (or is signed by) the root. */
export async function pkiKey(x5c: string[], root: X509Certificate): Promise<KeyObject> {
  const refuse = (why: string) => new AttestationRefused(`PKI token: ${why}`);
  if (x5c.length === 0 || x5c.length > 5) throw refuse(`x5c holds ${x5c.length} certificates (1–5 expected)`);
  let chain: X509Certificate[];
  try {
    chain = x5c.map((b64) => new X509Certificate(Buffer.from(b64, 'base64')));
  } catch {
    throw refuse('x5c holds something that is not a DER certificate');
  }
  const now = Date.now();
  for (const [i, c] of chain.entries()) {
    if (now < Date.parse(c.validFrom) || now > Date.parse(c.validTo)) throw refuse(`certificate ${i} of x5c (${c.subject.replaceAll('\n', ', ')}) is not valid now (${c.validFrom} – ${c.validTo})`);
    const issuer = chain[i + 1];
    if (issuer && !(c.checkIssued(issuer) && c.verify(issuer.publicKey))) throw refuse(`certificate ${i} of x5c is not signed by certificate ${i + 1}`);
  }
  const last = chain.at(-1)!;
  const anchored = last.fingerprint256 === root.fingerprint256 || (last.checkIssued(root) && last.verify(root.publicKey));
  if (!anchored) throw refuse('the x5c chain does not end at the pinned attestation root');
  return chain[0]!.publicKey;
}

/** jose's reason in words, naming the claim; never the token. */
function describe(err: unknown, audience: string): string {
  if (err instanceof errors.JWTExpired) return 'the token has expired (exp)';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `the token is not for audience ${JSON.stringify(audience)} (aud)`;
    if (err.claim === 'iss') return `the token was not issued by ${ATTESTATION_ISSUER} (iss)`;
    return `claim ${err.claim}: ${err.reason}`;
  }
  if (err instanceof errors.JWKSNoMatchingKey) return 'the token is signed by a key the attestation service does not publish (kid)';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'the token\'s signature is not valid';
  if (err instanceof errors.JOSEError) return `${err.code}: ${err.message}`;
  return (err as Error)?.message ?? String(err);
}
