import type { JWTPayload } from 'jose';
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';

export type Expected = string | number | boolean | (string | number | boolean)[];

/** The value at a dotted path (`submods.container.image_digest`), or undefined. */
export function claimAt(claims: JWTPayload, path: string): unknown {
  let v: unknown = claims;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

const same = (a: unknown, b: string | number | boolean) => a === b || (typeof a !== 'object' && a !== undefined && String(a) === String(b));

/**
 * attestation.require: claim path -> expected value. A scalar must equal the claim, or be one
 * of its elements when the claim is a list (support_attributes: STABLE). A list means "any of".
 * Checked before any secret is requested; the collaborators' own attribute conditions, which
 * also verify the token's signature, remain the real gate: this is the workload refusing to
 * run somewhere it was not meant to.
 */
export function checkClaims(claims: JWTPayload, require: Record<string, Expected>, field = 'attestation.require'): void {
  for (const [path, expected] of Object.entries(require)) {
    const actual = claimAt(claims, path);
    const wanted = Array.isArray(expected) ? expected : [expected];
    const ok = wanted.some((w) => (Array.isArray(actual) ? actual.some((a) => same(a, w)) : same(actual, w)));
    if (!ok) {
      const shown = actual === undefined ? 'absent' : JSON.stringify(actual);
      const want = Array.isArray(expected) ? `one of ${JSON.stringify(expected)}` : JSON.stringify(expected);
      throw new InitError(EXIT.noPerm, `attestation policy not met: claim ${path} is ${shown}, ${field} wants ${want}`, { claim: path });
    }
  }
}

/** The one dbgstat of a production Confidential Space image. */
export const PRODUCTION_DBGSTAT = 'disabled-since-boot';

/**
 * A debug image (dbgstat other than disabled-since-boot) lets the operator read the workload's
 * memory, so the collaborators' secrets: refused (77) unless attestation.allowDebug. Returns
 * whether the token is a debug one (allowed, to be warned about).
 */
export function checkDebug(claims: JWTPayload, allowDebug: boolean): boolean {
  const dbgstat = claims.dbgstat;
  if (dbgstat === PRODUCTION_DBGSTAT) return false;
  if (allowDebug) return true;
  const shown = dbgstat === undefined ? 'absent' : JSON.stringify(dbgstat);
  throw new InitError(
    EXIT.noPerm,
    `attestation policy not met: claim dbgstat is ${shown}, not "${PRODUCTION_DBGSTAT}": on a debug image the operator can read the secrets; run the production Confidential Space image (set attestation.allowDebug: true only for a test workload)`,
    { claim: 'dbgstat' },
  );
}

/** What is worth logging about where we run. Claims are facts about the VM, not secrets. */
export function claimsSummary(claims: JWTPayload): Record<string, unknown> {
  return {
    swname: claims.swname,
    swversion: claims.swversion,
    hwmodel: claims.hwmodel,
    dbgstat: claims.dbgstat,
    secboot: claims.secboot,
    imageReference: claimAt(claims, 'submods.container.image_reference'),
    imageDigest: claimAt(claims, 'submods.container.image_digest'),
    supportAttributes: claimAt(claims, 'submods.confidential_space.support_attributes'),
    expiresAt: isoTime(claims.exp),
  };
}

/** An `exp`-style claim as an ISO time; undefined when it is not a time a Date can hold (1e20). */
function isoTime(seconds: unknown): string | undefined {
  if (typeof seconds !== 'number') return undefined;
  const d = new Date(seconds * 1000);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}
