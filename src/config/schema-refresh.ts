// Rotation's config (docs/rotation.md `refresh:`, `reload:`): how often the secrets are read again, how
// long a failing source is tolerated, and how each program applies what changed. The loop that
// uses it is src/refresh/.
import { z } from 'zod';
import { duration } from './fields.ts';
import { FORWARDED_SIGNALS } from '../lib/signals.ts';

const RELOAD_HELP = 'write restart, none, { signal: SIGHUP } or { exec: [COMMAND, ARG...], timeout: 30s }';

/**
 * `reload:` of run: or a process. Absent: the preset's own (redis: CONFIG SET through its admin
 * socket; postgres: SIGHUP; Envoy: none, it watches its SDS directory), else none.
 */
export const reloadSchema = z.union(
  [
    z.enum(['restart', 'none']),
    z.strictObject({ signal: z.enum(FORWARDED_SIGNALS, { error: 'must be a signal the program can be sent, e.g. SIGHUP or SIGUSR1' }) }),
    z.strictObject({
      exec: z.array(z.string()).min(1),
      /** The command is killed (and the reload counted as failed) after this long. */
      timeout: duration(1).default(30_000),
    }),
  ],
  { error: RELOAD_HELP },
);
export type ReloadConfig = z.infer<typeof reloadSchema>;

/** "10%" or a fraction (0.1). */
const fraction = z.union([
  z.number().min(0).max(0.5),
  z.string().regex(/^\d{1,2}(\.\d+)?%$/, { error: 'write a percentage such as "10%"' }).transform((v) => Number(v.slice(0, -1)) / 100),
]).refine((f) => f >= 0 && f <= 0.5, { error: 'jitter is at most 50% of every' });

export const refreshSchema = z
  .strictObject({
    /** Read every `latest` (or alias) secret again this often. */
    every: duration(100),
    /** Up to this fraction of `every` earlier, at random, so that many VMs do not ask at once. */
    jitter: fraction.default(0.1),
    /**
     * A source that keeps failing for this long (since the last successful read) ends the init
     * with 69; absent: failures are logged (and counted in /metrics) but never fatal.
     */
    maxStale: duration(100).optional(),
    /** Whether a SIGHUP to the init also refreshes at once (the programs still get it as usual). */
    onSighup: z.boolean().default(true),
  })
  .refine((r) => r.maxStale === undefined || r.maxStale > r.every, {
    error: 'maxStale must be longer than every (else one late refresh would end the init)',
    path: ['maxStale'],
  });
export type RefreshConfig = z.infer<typeof refreshSchema>;

/**
 * The secrets a refresh reads again: a gcp ref to `latest` or an alias, and file sources (a file
 * has no versions). A ref pinned to a version number never changes.
 */
export function rotatingSecrets(secrets: Readonly<Record<string, { source: string; ref?: string }>>): { rotating: string[]; pinned: string[] } {
  const rotating: string[] = [];
  const pinned: string[] = [];
  for (const [name, s] of Object.entries(secrets)) (s.source === 'gcp' && /\/versions\/[1-9][0-9]*$/.test(s.ref ?? '') ? pinned : rotating).push(name);
  return { rotating, pinned };
}
