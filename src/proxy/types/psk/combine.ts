// Combining collaborators' shares into one TLS pre-shared key (docs/listeners.md `psk.identities`).
//
// A share is a secret payload holding 64 hex digits (32 random bytes), as in the reference
// multiparty demo. Rules, the same for both methods:
// - one trailing "\n" or "\r\n" is removed (Secret Manager payloads created with `echo` have one);
//   any other byte that is not a hex digit is an error, spaces included;
// - exactly 64 hex digits: shorter shares weaken the key, and 128 digits is the classic
//   `xxd -p` mistake (the hex of the hex text), so other lengths are refused rather than guessed;
// - a share whose 32 bytes are all the same value (all zeros, all 0xff) is a placeholder;
// - two shares with the same bytes (in any letter case) mean one party's share is not secret
//   from another, which defeats the point of several collaborators;
// - at least two shares (one share is one party's key, not a multiparty one); the same secret
//   listed twice is a config error.
// Share problems are data errors (exit 65) naming the secret, never showing its bytes; problems
// in the shape of the config (method, salt, info, number of shares) are config errors (exit 78).
// `combine: shamir` (t of n shares) is ./threshold.ts.
import { createHash, hkdfSync, timingSafeEqual } from 'node:crypto';
import { configError, dataError } from '../../../lib/errors.ts';

export const COMBINE_METHODS = ['sha256-concat', 'hkdf-sha256'] as const;
export type CombineMethod = (typeof COMBINE_METHODS)[number];

/**
 * `sha256-concat`: SHA-256 over the shares' hex TEXT concatenated in the listed order, no
 * separator, letter case kept as stored (what the reference demo computes).
 *
 * `hkdf-sha256`: HKDF-SHA256 (RFC 5869) with IKM = the decoded share bytes concatenated in the
 * listed order, salt and info = the UTF-8 bytes of the given strings, 32 bytes out. Recommended
 * for new setups. A peer computes the same key with
 * `openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:<share1><share2> -kdfopt salt:<salt> -kdfopt info:<info> HKDF`.
 */
export type CombineSpec =
  | { method: 'sha256-concat' }
  | { method: 'hkdf-sha256'; salt: string; info: string };

export interface Share {
  /** The secret's name in the config: the only thing about a share that errors may show. */
  name: string;
  /** The payload as fetched; the caller keeps ownership (it is read, never modified). */
  value: Uint8Array | string;
}

export const SHARE_HEX_DIGITS = 64;
export const SHARE_BYTES = 32;
export const KEY_BYTES = 32;
export const MIN_SHARES = 2;
// Node's hkdfSync refuses a longer info.
const MAX_INFO_BYTES = 1024;

/** Returns the 32-byte key. `identity` only labels error messages. */
export function combineShares(shares: readonly Share[], spec: CombineSpec, identity?: string): Buffer {
  const where = identity === undefined ? 'psk' : `psk identity "${identity}"`;
  checkSpec(spec, where);
  if (shares.length < MIN_SHARES) {
    throw configError(`${where}: needs at least ${MIN_SHARES} shares, got ${shares.length}; a key from one share is that one party's key`);
  }
  const names = new Set<string>();
  for (const s of shares) {
    if (names.has(s.name)) throw configError(`${where}: share "${s.name}" is listed twice; list each collaborator's secret once`);
    names.add(s.name);
  }

  const texts: Buffer[] = [];
  const bytes: Buffer[] = [];
  try {
    for (const s of shares) {
      const text = shareText(s, where);
      texts.push(text);
      bytes.push(decodeShare(text, s.name, where));
    }
    for (let i = 0; i < bytes.length; i++) {
      for (let j = i + 1; j < bytes.length; j++) {
        if (timingSafeEqual(bytes[i]!, bytes[j]!)) {
          throw dataError(`${where}: shares "${shares[i]!.name}" and "${shares[j]!.name}" are identical; each collaborator must hold its own random share`);
        }
      }
    }
    if (spec.method === 'sha256-concat') {
      // Hashing piece by piece equals hashing the concatenation, with no extra copy to wipe.
      const h = createHash('sha256');
      for (const t of texts) h.update(t);
      return h.digest();
    }
    const ikm = Buffer.concat(bytes);
    try {
      return Buffer.from(hkdfSync('sha256', ikm, Buffer.from(spec.salt, 'utf8'), Buffer.from(spec.info, 'utf8'), KEY_BYTES));
    } finally {
      ikm.fill(0);
    }
  } finally {
    for (const b of texts) b.fill(0);
    for (const b of bytes) b.fill(0);
  }
}

function checkSpec(spec: CombineSpec, where: string): void {
  const method = (spec as { method?: unknown } | undefined)?.method;
  if (!COMBINE_METHODS.includes(method as CombineMethod)) {
    throw configError(`${where}: combine must be one of ${COMBINE_METHODS.join(', ')} (there is no default), got ${JSON.stringify(method)}`);
  }
  if (spec.method !== 'hkdf-sha256') return;
  for (const field of ['salt', 'info'] as const) {
    const v = spec[field];
    if (typeof v !== 'string' || v === '') {
      throw configError(`${where}: hkdf-sha256 needs a non-empty ${field} (a string both peers share)`);
    }
  }
  if (Buffer.byteLength(spec.info, 'utf8') > MAX_INFO_BYTES) {
    throw configError(`${where}: hkdf-sha256 info is longer than ${MAX_INFO_BYTES} bytes`);
  }
}

/** A private copy of the share's text without one trailing newline (the copy is wiped later). */
function shareText(share: Share, where: string): Buffer {
  const src = share.value;
  if (typeof src !== 'string' && !(src instanceof Uint8Array)) {
    throw dataError(`${where}: share "${share.name}" has no value`);
  }
  let end = typeof src === 'string' ? src.length : src.byteLength;
  const at = (i: number) => (typeof src === 'string' ? src.charCodeAt(i) : src[i]!);
  if (end > 0 && at(end - 1) === 0x0a) {
    end--;
    if (end > 0 && at(end - 1) === 0x0d) end--;
  }
  if (end !== SHARE_HEX_DIGITS) {
    throw dataError(`${where}: share "${share.name}" must be ${SHARE_HEX_DIGITS} hex digits (${SHARE_BYTES} bytes), got ${end} characters`);
  }
  const text = Buffer.alloc(end);
  for (let i = 0; i < end; i++) {
    const c = at(i);
    if (hexValue(c) < 0) {
      text.fill(0);
      // The position is safe to show; the character itself is part of a secret.
      throw dataError(`${where}: share "${share.name}" is not hex (character ${i + 1} of ${end} is not 0-9, a-f, A-F)`);
    }
    text[i] = c;
  }
  return text;
}

function decodeShare(text: Buffer, name: string, where: string): Buffer {
  const out = Buffer.alloc(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (hexValue(text[2 * i]!) << 4) | hexValue(text[2 * i + 1]!);
  if (out.every((b) => b === out[0])) {
    const what = out[0] === 0 ? 'all zeros' : 'one byte repeated';
    out.fill(0);
    throw dataError(`${where}: share "${name}" is ${what}, a placeholder rather than a random share`);
  }
  return out;
}

/** The value of one hex digit's character code, or -1. */
export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
