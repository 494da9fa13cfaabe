// Field schemas for the listener types' own schemas. They cannot import src/config/schema.ts
// (the listener table is built into it: a cycle). The same rules as schema.ts's `duration` and
// `url`; at merge, schema.ts should take them from here (main's duration(minMs) rule moved in).
import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { checkEndpointUrl } from './endpoints.ts';

/** "30s", "500ms", "2m", or a number of seconds; parsed to milliseconds. */
export const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? Math.round(v * 1000) : parseDuration(v);
  if (ms === undefined || ms < 0) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration: use e.g. 30s, 500ms, 2m` });
    return z.NEVER;
  }
  return ms;
});

/** https anywhere, plain http only to loopback (DESIGN security rules). */
export const url = (field: string) =>
  z.string().superRefine((v, ctx) => {
    const problem = checkEndpointUrl(v);
    if (problem) ctx.addIssue({ code: 'custom', message: `${field} ${JSON.stringify(v)}: ${problem}` });
  });
