// `tee-init shares split|combine`: a collaborator's tools for `combine: shamir`, offline. The
// secret and the shares travel on stdin and stdout only (never argv, never a log): a dealer
// pipes them straight into each collaborator's Secret Manager.
import { hkdfSync, randomBytes } from 'node:crypto';
import type { SharesOptions } from '../cli.ts';
import { dataError } from '../lib/errors.ts';
import { hexValue, KEY_BYTES } from '../proxy/types/psk/combine.ts';
import { combineSecret, MAX_SECRET_BYTES, MIN_SECRET_BYTES, splitSecret, verifyValue } from '../proxy/types/psk/threshold.ts';

/** More than this on stdin is not a secret or a list of shares (255 shares of 1 KiB). */
export const MAX_INPUT_BYTES = 1024 * 1024;
const RANDOM_SECRET_BYTES = 32;

/** The lines to print on stdout; throws an InitError (65 for what stdin held). */
export async function runShares(o: SharesOptions, stdin: () => Promise<Buffer>): Promise<string[]> {
  return o.action === 'split' ? split(o, stdin) : combine(o, stdin);
}

async function split(o: SharesOptions, stdin: () => Promise<Buffer>): Promise<string[]> {
  const secret = o.random ? randomBytes(RANDOM_SECRET_BYTES) : decodeSecret(await stdin());
  try {
    return [...(await splitSecret(secret, o.shares!, o.threshold!)), `verify: ${verifyValue(secret)}`];
  } finally {
    secret.fill(0);
  }
}

async function combine(o: SharesOptions, stdin: () => Promise<Buffer>): Promise<string[]> {
  const input = await stdin();
  const lines = input.toString('latin1').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  input.fill(0);
  const shares = lines.map((value, i) => ({ name: `line ${i + 1}`, value }));
  const threshold = o.threshold ?? shares.length;
  if (shares.length < Math.max(2, threshold)) {
    throw dataError(`shares combine: needs ${Math.max(2, threshold)} shares on stdin (one hex share a line), got ${shares.length}`);
  }
  const secret = await combineSecret(shares, threshold, o.verify, 'shares combine');
  try {
    const out = [`verify: ${verifyValue(secret)}`];
    if (o.salt !== undefined && o.info !== undefined) {
      // Asked for explicitly (--salt, --info): the key a peer configures, e.g. for openssl -psk.
      out.push(`psk: ${Buffer.from(hkdfSync('sha256', secret, Buffer.from(o.salt, 'utf8'), Buffer.from(o.info, 'utf8'), KEY_BYTES)).toString('hex')}`);
    }
    return out;
  } finally {
    secret.fill(0);
  }
}

/** The secret to split: hex text, one trailing newline allowed, 16 to 1024 bytes. */
function decodeSecret(input: Buffer): Buffer {
  let end = input.length;
  if (end > 0 && input[end - 1] === 0x0a) end--;
  if (end > 0 && input[end - 1] === 0x0d) end--;
  const bad = input.subarray(0, end).findIndex((c) => hexValue(c) < 0);
  const bytes = end / 2;
  if (bad >= 0 || end % 2 !== 0 || bytes < MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES) {
    input.fill(0);
    const why = bad >= 0 ? `character ${bad + 1} is not a hex digit` : `${end} hex digits`;
    throw dataError(`shares split: stdin must hold the secret as ${2 * MIN_SECRET_BYTES} to ${2 * MAX_SECRET_BYTES} hex digits (e.g. \`openssl rand -hex 32 |\`), or use --random; found ${why}`);
  }
  const secret = Buffer.from(input.subarray(0, end).toString('latin1'), 'hex');
  input.fill(0);
  return secret;
}
