// Field types shared by the config schema and the listener types' schemas (which cannot import
// schema.ts: it imports them). One rule per kind of field: every duration, name and HOST:PORT
// of the config is checked the same way.
import { z } from 'zod';
import { checkDuration } from '../lib/duration.ts';
import { parseHostPort } from '../lib/address.ts';
import { checkEndpointUrl } from './endpoints.ts';
import { MAX_NONCES, NONCE_BYTES } from '../lib/launcher-limits.ts';
import { found } from './messages.ts';

export const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
export const name = (what: string) =>
  z.string().regex(NAME, { error: `${what} must be a name: letters, digits, _ and - (at most 63), starting with a letter or _` });

/**
 * A duration: "30s", "500ms", "2m", "1h", "1m30s", or a number of seconds. One rule for every
 * duration field (checkDuration): at most Node's timer limit, at least `minMs`.
 */
export const duration = (minMs = 0) =>
  z.unknown().transform((v, ctx) => {
    const { ms, problem } = checkDuration(v, minMs);
    if (problem !== undefined) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    return ms;
  });

/**
 * HOST:PORT as the listener will parse it (parseHostPort), so that check refuses what the boot
 * would refuse after the child started. Port 0 (any free port) only where a listener binds.
 */
export const hostPort = (field: string, allowPortZero: boolean) =>
  z.string({ error: `write HOST:PORT, e.g. "${allowPortZero ? '0.0.0.0:8443' : '127.0.0.1:6379'}" (quoted)` }).superRefine((v, ctx) => {
    if (!/^(\[[0-9a-fA-F:.]{2,45}\]|[A-Za-z0-9._-]{1,253}):\d{1,5}$/.test(v)) {
      ctx.addIssue({ code: 'custom', message: `found ${found(v)}, write HOST:PORT (IPv6 in brackets, e.g. [::1]:6379)` });
      return;
    }
    try {
      parseHostPort(v, field, allowPortZero);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(`${field}: `, '') });
    }
  });

/** OpenSSL's PSK_MAX_IDENTITY_LEN counts bytes, not characters. */
export const MAX_IDENTITY_BYTES = 128;
export const pskIdentityName = z.string().refine((id) => id !== '' && Buffer.byteLength(id, 'utf8') <= MAX_IDENTITY_BYTES, {
  error: `an identity must be 1-${MAX_IDENTITY_BYTES} bytes of UTF-8 text (OpenSSL's limit)`,
});


/** https anywhere, plain http only to loopback (DESIGN security rules). */
export const url = (field: string) =>
  z.string().superRefine((v, ctx) => {
    const problem = checkEndpointUrl(v);
    if (problem) ctx.addIssue({ code: 'custom', message: `${field} ${JSON.stringify(v)}: ${problem}` });
  });

/** Nonces bound into a launcher token (src/lib/launcher-limits.ts): what the launcher accepts. */
export const nonces = z
  .array(z.string().refine((n) => Buffer.byteLength(n, 'utf8') >= NONCE_BYTES.min && Buffer.byteLength(n, 'utf8') <= NONCE_BYTES.max, {
    error: `each nonce must be ${NONCE_BYTES.min} to ${NONCE_BYTES.max} bytes (the launcher's limits)`,
  }))
  .min(1)
  .max(MAX_NONCES, { error: `at most ${MAX_NONCES} nonces (the launcher's limit)` });

/** An expected claim value (attestation.require, verify.attestation.require): a scalar, or a list meaning any of. */
export const claimValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()])).min(1)]);
