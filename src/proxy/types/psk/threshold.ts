// `combine: shamir`: t of n collaborators' shares give the key (docs/listeners.md `psk.identities`).
//
// Each share is one share of Shamir's scheme over GF(2^8) in the format of the audited
// `shamir-secret-sharing` library (HashiCorp Vault writes the same): the share's bytes with the x
// coordinate last, as hex text. The library does the field arithmetic; this file checks what it
// is given and what comes out. Rules:
// - a share whose payload is empty did not arrive (the fetch stage skipped it, saying why);
//   fewer than `threshold` arrived: 69, naming which arrived and which did not;
// - one trailing "\n" or "\r\n" is removed; then hex digits only, an even number of them;
// - every share of one split has one length: secret length + 1, the secret 16..1024 bytes;
// - x coordinate 0 would be the secret itself, and all bytes equal is a placeholder;
// - two shares with one x coordinate are one share twice, or shares of different splits;
// - `verify: sha256:HEX` (SHA-256 of the combined secret) catches a wrong or corrupted share;
//   with more than `threshold` shares, every share is also checked against the others.
// Share problems are data errors (65) naming the identity and the share, never its bytes.
// The PSK is HKDF-SHA256(combined secret, salt, info), 32 bytes, as `hkdf-sha256` derives it.
import { createHash, hkdfSync, timingSafeEqual } from 'node:crypto';
import { combine, split } from 'shamir-secret-sharing';
import { configError, dataError, InitError } from '../../../lib/errors.ts';
import { EXIT } from '../../../lib/exit-codes.ts';
import { hexValue, KEY_BYTES, type Share } from './combine.ts';

export interface ThresholdSpec {
  method: 'shamir';
  threshold: number;
  salt: string;
  info: string;
  /** `sha256:` + 64 hex digits: SHA-256 of the combined secret. */
  verify?: string | undefined;
}

/** The combined secret: at least 128 bits (a PSK's strength), at most what a secret holds. */
export const MIN_SECRET_BYTES = 16;
export const MAX_SECRET_BYTES = 1024;
export const MAX_SHARES = 255;
export const VERIFY = /^sha256:[0-9a-fA-F]{64}$/;
const MAX_INFO_BYTES = 1024;

/** The shares that arrived (non-empty), or an InitError naming those that did and did not. */
export function arrivedShares(shares: readonly Share[], threshold: number, where: string): Share[] {
  const arrived = shares.filter((s) => (typeof s.value === 'string' ? s.value.length : s.value?.byteLength ?? 0) > 0);
  if (arrived.length >= threshold) return arrived;
  const missing = shares.filter((s) => !arrived.includes(s));
  throw new InitError(
    EXIT.unavailable,
    `${where}: needs ${threshold} of its ${shares.length} shares, ${arrived.length} arrived (${listNames(arrived)}); not arrived: ${listNames(missing)}`,
    { arrived: arrived.map((s) => s.name), missing: missing.map((s) => s.name) },
  );
}

/** Returns the 32-byte key; `identity` only labels messages. */
export async function combineThreshold(shares: readonly Share[], spec: ThresholdSpec, identity?: string): Promise<Buffer> {
  const where = identity === undefined ? 'psk' : `psk identity "${identity}"`;
  checkSpec(spec, shares, where);
  const secret = await combineSecret(arrivedShares(shares, spec.threshold, where), spec.threshold, spec.verify, where);
  try {
    return Buffer.from(hkdfSync('sha256', secret, Buffer.from(spec.salt, 'utf8'), Buffer.from(spec.info, 'utf8'), KEY_BYTES));
  } finally {
    secret.fill(0);
  }
}

/**
 * The secret the shares (all of which arrived) combine to, checked against `verify` and, past
 * the first `threshold`, each share against the others; the caller wipes it. `where` starts
 * every message.
 */
export async function combineSecret(arrived: readonly Share[], threshold: number, verify: string | undefined, where: string): Promise<Buffer> {
  const decoded: Buffer[] = [];
  let secret: Buffer | undefined;
  try {
    for (const s of arrived) decoded.push(decodeShare(s, where));
    checkShareSet(arrived, decoded, where);
    secret = await combineBytes(decoded.slice(0, threshold));
    if (verify !== undefined) {
      const want = Buffer.from(verify.slice('sha256:'.length), 'hex');
      if (!timingSafeEqual(createHash('sha256').update(secret).digest(), want)) {
        throw dataError(`${where}: shares ${listNames(arrived.slice(0, threshold))} combine to a secret that does not match verify: one of them is wrong or corrupted, or verify is not the one \`tee-init shares split\` printed for this split`);
      }
    }
    // Any `threshold` consistent shares give the same secret: each extra share, in place of the
    // last one of the base, must give it too (then every share lies on one polynomial).
    for (let j = threshold; j < decoded.length; j++) {
      const other = await combineBytes([...decoded.slice(0, threshold - 1), decoded[j]!]);
      const same = timingSafeEqual(other, secret);
      other.fill(0);
      if (!same) {
        throw dataError(`${where}: share "${arrived[j]!.name}" does not agree with shares ${listNames(arrived.slice(0, threshold))}: one of them is corrupted or from another split${verify === undefined ? ' (verify: sha256:… would tell whether the first ones are right)' : ''}`);
      }
    }
    const out = secret;
    secret = undefined;
    return out;
  } finally {
    secret?.fill(0);
    for (const b of decoded) b.fill(0);
  }
}

/** Splits `secret` into `shares` shares, any `threshold` of which give it back (as hex text). */
export async function splitSecret(secret: Uint8Array, shares: number, threshold: number): Promise<string[]> {
  // A plain Uint8Array copy (the library checks the constructor), wiped like the parts.
  const copy = new Uint8Array(secret);
  let parts: Uint8Array[] = [];
  try {
    parts = await split(copy, shares, threshold);
    return parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('hex'));
  } finally {
    copy.fill(0);
    for (const p of parts) p.fill(0);
  }
}

/** The `verify` value of a secret: `sha256:` and the hex of its SHA-256. */
export function verifyValue(secret: Uint8Array): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex')}`;
}

/** The library's combine; it wants plain Uint8Array views (it checks the constructor). */
async function combineBytes(shares: readonly Buffer[]): Promise<Buffer> {
  const out = await combine(shares.map((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)));
  try {
    return Buffer.from(out);
  } finally {
    out.fill(0);
  }
}

function checkSpec(spec: ThresholdSpec, shares: readonly Share[], where: string): void {
  const t = spec.threshold;
  if (!Number.isInteger(t) || t < 2 || t > MAX_SHARES) {
    throw configError(`${where}: shamir needs threshold: a whole number from 2 to ${MAX_SHARES} (a key one collaborator can make alone is that one party's key), got ${JSON.stringify(t)}`);
  }
  if (shares.length < t || shares.length > MAX_SHARES) {
    throw configError(`${where}: threshold ${t} needs at least ${t} (and at most ${MAX_SHARES}) shares listed, got ${shares.length}`);
  }
  const names = new Set<string>();
  for (const s of shares) {
    if (names.has(s.name)) throw configError(`${where}: share "${s.name}" is listed twice; list each collaborator's secret once`);
    names.add(s.name);
  }
  for (const field of ['salt', 'info'] as const) {
    if (typeof spec[field] !== 'string' || spec[field] === '') throw configError(`${where}: shamir needs a non-empty ${field} (the PSK is HKDF-SHA256 of the combined secret, as hkdf-sha256)`);
  }
  if (Buffer.byteLength(spec.info, 'utf8') > MAX_INFO_BYTES) throw configError(`${where}: info is longer than ${MAX_INFO_BYTES} bytes`);
  if (spec.verify !== undefined && !VERIFY.test(spec.verify)) {
    throw configError(`${where}: verify must be sha256: and 64 hex digits (what \`tee-init shares split\` printed)`);
  }
}

/** The share's bytes (a private copy, wiped by the caller). */
function decodeShare(share: Share, where: string): Buffer {
  const src = share.value;
  let end = typeof src === 'string' ? src.length : src.byteLength;
  const at = (i: number) => (typeof src === 'string' ? src.charCodeAt(i) : src[i]!);
  if (end > 0 && at(end - 1) === 0x0a) {
    end--;
    if (end > 0 && at(end - 1) === 0x0d) end--;
  }
  const bytes = end / 2;
  if (end % 2 !== 0 || bytes < MIN_SECRET_BYTES + 1 || bytes > MAX_SECRET_BYTES + 1) {
    throw dataError(`${where}: share "${share.name}" must be an even number of hex digits, ${2 * (MIN_SECRET_BYTES + 1)} to ${2 * (MAX_SECRET_BYTES + 1)} (a ${MIN_SECRET_BYTES}- to ${MAX_SECRET_BYTES}-byte secret and the x coordinate), got ${end} characters`);
  }
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) {
    const hi = hexValue(at(2 * i));
    const lo = hexValue(at(2 * i + 1));
    if (hi < 0 || lo < 0) {
      out.fill(0);
      // The position is safe to show; the character itself is part of a secret.
      throw dataError(`${where}: share "${share.name}" is not hex (character ${2 * i + (hi < 0 ? 1 : 2)} of ${end} is not 0-9, a-f, A-F)`);
    }
    out[i] = (hi << 4) | lo;
  }
  if (out[bytes - 1] === 0) {
    out.fill(0);
    throw dataError(`${where}: share "${share.name}" has x coordinate 0 (its last byte): that would be the secret itself, not a share`);
  }
  if (out.every((b) => b === out[0])) {
    out.fill(0);
    throw dataError(`${where}: share "${share.name}" is one byte repeated, a placeholder rather than a share`);
  }
  return out;
}

function checkShareSet(shares: readonly Share[], decoded: readonly Buffer[], where: string): void {
  const first = decoded[0]!;
  decoded.forEach((d, i) => {
    if (d.length !== first.length) {
      throw dataError(`${where}: share "${shares[i]!.name}" is ${d.length} bytes, share "${shares[0]!.name}" ${first.length}: shares of one split have one length (another split, or a share cut short)`);
    }
    for (let j = 0; j < i; j++) {
      if (decoded[j]![d.length - 1] === d[d.length - 1]) {
        throw dataError(`${where}: shares "${shares[j]!.name}" and "${shares[i]!.name}" have the same x coordinate: the same share twice, or shares of different splits`);
      }
    }
  });
}

function listNames(shares: readonly Share[]): string {
  return shares.length === 0 ? 'none' : shares.map((s) => JSON.stringify(s.name)).join(', ');
}
