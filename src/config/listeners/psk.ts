// The PSK listener's config (docs/listeners.md `psk:` and `listeners: {type: psk}`): one schema for
// both spellings, so the shorthand and a listener entry cannot drift apart. Its runtime (the keys
// combined, start()) is src/proxy/types/psk/.
import { z } from 'zod';
import { parseHostPort } from '../../lib/address.ts';
import { duration, hostPort, name, pskIdentityName } from '../fields.ts';
import type { ListenerConfigType } from './type.ts';

const identity = z.strictObject({
  shares: z.array(name('a share')).min(1).max(255),
  combine: z.enum(['sha256-concat', 'hkdf-sha256', 'shamir'], { error: 'combine must be sha256-concat, hkdf-sha256 or shamir (there is no default)' }),
  salt: z.string().min(1).optional(),
  info: z.string().min(1).optional(),
  /** shamir: how many of the shares give the key. */
  threshold: z.number().int().min(2, { error: 'threshold must be at least 2: a key one collaborator can make alone is that one party\'s key' }).max(255).optional(),
  /** shamir: `sha256:HEX`, SHA-256 of the combined secret (`tee-init shares split` prints it). */
  verify: z.string().regex(/^sha256:[0-9a-fA-F]{64}$/, { error: 'write sha256: and 64 hex digits, the verify value `tee-init shares split` printed' }).optional(),
});

const fields = {
  mode: z.enum(['server', 'client']),
  listen: hostPort('listen', true),
  connect: hostPort('connect', false),
  identities: z.record(pskIdentityName, identity).refine((ids) => Object.keys(ids).length > 0, { error: 'found none, add at least one identity' }),
  tls12: z.boolean().default(false),
  handshakeTimeout: duration(1).default(10_000),
  idleTimeout: duration().default(12 * 3_600_000),
  maxConnections: z.number().int().min(1).max(100_000).default(1024),
  readyTimeout: duration(1).default(30_000),
  /** Worker threads serving the port (SO_REUSEPORT); 0 = in the init's own thread. */
  workers: z.number().int().min(0).max(64).optional(),
};

type Fields = z.infer<z.ZodObject<typeof fields>>;

function crossChecks(c: Fields, ctx: z.core.$RefinementCtx): void {
  for (const [id, ident] of Object.entries(c.identities)) {
    if (ident.combine !== 'sha256-concat' && (ident.salt === undefined || ident.info === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['identities', id], message: `${ident.combine} needs both salt and info (both peers must use the same)` });
    }
    if (ident.combine === 'shamir') thresholdChecks(ident, (path, message) => ctx.addIssue({ code: 'custom', path: ['identities', id, ...path], message }));
    else {
      // The boot's combine refuses it too (combine.ts); said here so check and the boot agree before any fetch.
      if (ident.shares.length < 2) ctx.addIssue({ code: 'custom', path: ['identities', id, 'shares'], message: `needs at least 2 shares, got ${ident.shares.length}; a key from one share is that one party's key` });
      for (const field of ['threshold', 'verify'] as const) {
        if (ident[field] !== undefined) ctx.addIssue({ code: 'custom', path: ['identities', id, field], message: `${field} applies to combine: shamir only` });
      }
    }
    if (ident.combine === 'sha256-concat' && (ident.salt !== undefined || ident.info !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['identities', id], message: 'salt and info apply to hkdf-sha256 and shamir only' });
    }
  }
  if (c.mode === 'client' && Object.keys(c.identities).length !== 1) {
    ctx.addIssue({ code: 'custom', path: ['identities'], message: 'client mode uses exactly one identity' });
  }
}

function thresholdChecks(ident: z.infer<typeof identity>, fail: (path: (string | number)[], message: string) => void): void {
  if (ident.threshold === undefined) {
    fail([], `shamir needs threshold: how many of its ${ident.shares.length} shares give the key`);
  } else if (ident.threshold > ident.shares.length) {
    fail(['threshold'], `threshold ${ident.threshold} is more than the ${ident.shares.length} shares listed: list every collaborator's share`);
  }
  const seen = new Set<string>();
  ident.shares.forEach((s, i) => {
    if (seen.has(s)) fail(['shares', i], `"${s}" is listed twice: list each collaborator's secret once`);
    seen.add(s);
  });
}

/** The shares of `combine: shamir` identities: any `threshold` of them give the key. */
export function shareQuorums(c: Pick<Fields, 'identities'>): { what: string; names: string[]; need: number }[] {
  return Object.entries(c.identities).flatMap(([id, ident]) =>
    ident.combine === 'shamir' ? [{ what: `identity "${id}"`, names: ident.shares, need: ident.threshold! }] : [],
  );
}

/** `psk:` (the shorthand for one listener named psk). */
export const pskShorthandSchema = z.strictObject(fields).superRefine(crossChecks);
/** `listeners: { NAME: { type: psk, ... } }`. */
export const pskListenerSchema = z.strictObject({ type: z.literal('psk'), ...fields }).superRefine(crossChecks);
export type PskListenerConfig = z.infer<typeof pskListenerSchema>;

export const pskConfigType: ListenerConfigType<PskListenerConfig> = {
  type: 'psk',
  schema: pskListenerSchema,
  secrets: (c) => [...new Set(Object.values(c.identities).flatMap((i) => i.shares))],
  quorums: shareQuorums,
  credentials: () => [],
  actsForWorkload: (c) => (c.mode === 'client' ? 'a psk listener in client mode connects with the workload\'s pre-shared key' : undefined),
  upstream: (c) => (c.mode === 'server' ? parseHostPort(c.connect, 'connect') : undefined),
};
