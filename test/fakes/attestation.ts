// The TEE side of attestation: an RS256 signing key standing in for Google's attestation
// service, the claim set a Confidential Space token carries, and the launcher's atomic
// write of the token file.
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';

export const ISSUER = 'https://confidentialcomputing.googleapis.com';
export const STS_AUDIENCE = 'https://sts.googleapis.com';
const HOUR = 3600;

/** Claims are JSON; the default set is typed below, overrides may add anything. */
export type Claims = JWTPayload & Record<string, unknown>;

/** A recursive partial; `undefined` deletes a claim (see deepMerge). */
export type ClaimOverrides = { [key: string]: unknown };

export interface SignOptions {
  /** Time left before `exp` (may be negative for an expired token). Default: exp from the claims, else 1 h. */
  expiresInSeconds?: number;
  /** Replaces `aud`. */
  audience?: string | string[];
  /** Extra protected-header fields (e.g. a wrong `kid`). */
  header?: Record<string, unknown>;
}

export interface AttestationKey {
  readonly kid: string;
  /** The public keys, as the issuer's jwks_uri would serve them. */
  readonly jwks: JSONWebKeySet;
  sign(claims: Claims, options?: SignOptions): Promise<string>;
  /** Verifies signature and time claims; `audience` is checked when given. */
  verify(jwt: string, options?: { audience?: string }): Promise<Claims>;
}

export async function createAttestationKey(kid = `fake-${randomBytes(6).toString('hex')}`): Promise<AttestationKey> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    jwks: { keys: [jwk] },
    async sign(claims, options = {}) {
      const payload: Claims = { ...claims };
      const now = Math.floor(Date.now() / 1000);
      if (options.expiresInSeconds !== undefined || payload.exp === undefined) {
        payload.exp = now + (options.expiresInSeconds ?? HOUR);
        // A token always lives 1 h: a short remaining time means it was issued a while ago.
        payload.iat = payload.nbf = Math.min(now, payload.exp - HOUR);
      }
      if (options.audience !== undefined) payload.aud = options.audience;
      return new SignJWT(payload)
        .setProtectedHeader({ ...options.header, alg: 'RS256', kid: (options.header?.kid as string | undefined) ?? kid, typ: 'JWT' })
        .sign(privateKey);
    },
    async verify(jwt, options = {}) {
      const { payload } = await jwtVerify(jwt, publicKey, {
        algorithms: ['RS256'],
        ...(options.audience !== undefined ? { audience: options.audience } : {}),
      });
      return payload as Claims;
    },
  };
}

export interface ConfidentialSpaceClaims extends Claims {
  iss: string;
  aud: string;
  sub: string;
  iat: number;
  nbf: number;
  exp: number;
  secboot: boolean;
  oemid: number;
  hwmodel: string;
  swname: string;
  swversion: string[];
  dbgstat: string;
  submods: {
    confidential_space: { support_attributes: string[] };
    container: {
      image_reference: string;
      image_digest: string;
      restart_policy: string;
      image_id: string;
      env: Record<string, string>;
      args: string[];
    };
    gce: { project_id: string; project_number: string; zone: string; instance_name: string; instance_id: string };
  };
  google_service_accounts: string[];
}

export const DEFAULT_IMAGE_DIGEST = `sha256:${'ab12'.repeat(16)}`;

/** A production-image token's claims (1 h from now), deep-merged with `overrides`. */
export function confidentialSpaceClaims(overrides: ClaimOverrides = {}): ConfidentialSpaceClaims {
  const now = Math.floor(Date.now() / 1000);
  const gce = {
    project_id: 'operator-proj',
    project_number: '333',
    zone: 'us-central1-a',
    instance_name: 'tee-vm',
    instance_id: '4567890123456789012',
  };
  const base: ConfidentialSpaceClaims = {
    iss: ISSUER,
    aud: STS_AUDIENCE,
    sub: `https://www.googleapis.com/compute/v1/projects/${gce.project_id}/zones/${gce.zone}/instances/${gce.instance_name}`,
    iat: now,
    nbf: now,
    exp: now + HOUR,
    secboot: true,
    oemid: 11129,
    hwmodel: 'GCP_INTEL_TDX',
    swname: 'CONFIDENTIAL_SPACE',
    swversion: ['250301'],
    dbgstat: 'disabled-since-boot',
    submods: {
      confidential_space: { support_attributes: ['LATEST', 'STABLE', 'USABLE'] },
      container: {
        image_reference: 'us-docker.pkg.dev/workload-proj/images/server:latest',
        image_digest: DEFAULT_IMAGE_DIGEST,
        restart_policy: 'Never',
        image_id: `sha256:${'cd34'.repeat(16)}`,
        env: {},
        args: [],
      },
      gce,
    },
    google_service_accounts: [`workload@${gce.project_id}.iam.gserviceaccount.com`],
  };
  return deepMerge(base, overrides) as ConfidentialSpaceClaims;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);

/**
 * Merges `overrides` into a copy of `base`: objects recursively, anything else (arrays
 * included) replaced; an `undefined` value removes the key, so a test can drop a claim.
 */
export function deepMerge(base: Record<string, unknown>, overrides: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete out[key];
    else if (isPlainObject(value) && isPlainObject(out[key])) out[key] = deepMerge(out[key], value);
    else out[key] = structuredClone(value);
  }
  return out;
}

/** Writes the token as the launcher does: a temporary file in the same directory, then rename. */
export function writeTokenFile(path: string, jwt: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  writeFileSync(tmp, jwt, { mode: 0o644 });
  renameSync(tmp, path);
}
