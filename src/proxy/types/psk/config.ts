// The PSK listener's config (DESIGN.md `psk:` and `listeners: {type: psk}`): one schema for
// both spellings, so the shorthand and a listener entry cannot drift apart.
import { z } from 'zod';
import { duration, hostPort, name, pskIdentityName } from '../../../config/fields.ts';

const identity = z.strictObject({
  shares: z.array(name('a share')).min(1),
  combine: z.enum(['sha256-concat', 'hkdf-sha256'], { error: 'combine must be sha256-concat or hkdf-sha256 (there is no default)' }),
  salt: z.string().min(1).optional(),
  info: z.string().min(1).optional(),
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
    if (ident.combine === 'hkdf-sha256' && (ident.salt === undefined || ident.info === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['identities', id], message: 'hkdf-sha256 needs both salt and info (both peers must use the same)' });
    }
    if (ident.combine === 'sha256-concat' && (ident.salt !== undefined || ident.info !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['identities', id], message: 'salt and info apply to hkdf-sha256 only' });
    }
  }
  if (c.mode === 'client' && Object.keys(c.identities).length !== 1) {
    ctx.addIssue({ code: 'custom', path: ['identities'], message: 'client mode uses exactly one identity' });
  }
}

/** `psk:` (the shorthand for one listener named psk). */
export const pskShorthandSchema = z.strictObject(fields).superRefine(crossChecks);
/** `listeners: { NAME: { type: psk, ... } }`. */
export const pskListenerSchema = z.strictObject({ type: z.literal('psk'), ...fields }).superRefine(crossChecks);
export type PskListenerConfig = z.infer<typeof pskListenerSchema>;
