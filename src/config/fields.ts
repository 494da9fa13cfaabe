// Field types shared by the config schema and the listener types' schemas (which cannot import
// schema.ts: it imports them).
import { z } from 'zod';
import { parseDuration } from '../duration.ts';

export const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
export const name = (what: string) =>
  z.string().regex(NAME, { error: `${what} must be a name: letters, digits, _ and -, starting with a letter or _` });

/** "30s", "500ms", "2m", or a number of seconds; yields milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? Math.round(v * 1000) : parseDuration(v);
  if (ms === undefined || ms < 0) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration: use e.g. 30s, 500ms, 2m` });
    return z.NEVER;
  }
  return ms;
});

export const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'must be HOST:PORT' });
