// Secrets of which any t of n will do (the shares of a `combine: shamir` PSK identity). Such a
// secret is optional: the fetch stage skips one that cannot be read (denied, missing, disabled,
// unavailable past the deadline) with a warning naming the secret and the collaborator, and
// hands it on as empty. After the fetch, each group needs `need` of its secrets to have arrived.
import { InitError } from '../lib/errors.ts';
import { EXIT, type ExitCode } from '../lib/exit-codes.ts';
import type { SecretValue } from './fetch.ts';

export interface Quorum {
  /** Names the group in messages: `psk identity "Client1"`. */
  what: string;
  names: readonly string[];
  need: number;
}

/**
 * name → what it is for (for the skip warning). A secret is optional when some quorum lists it
 * and it has no `file:` (a file must be written, so it must be read).
 */
export function optionalSecrets(quorums: readonly Quorum[], secrets: Readonly<Record<string, { file?: string | undefined }>>): Map<string, string> {
  const out = new Map<string, string>();
  for (const q of quorums) {
    for (const n of q.names) {
      if (secrets[n]?.file !== undefined) continue;
      const why = `one of ${q.names.length} shares of ${q.what}, which needs ${q.need}`;
      out.set(n, out.has(n) ? `${out.get(n)}; ${why}` : why);
    }
  }
  return out;
}

/**
 * Fails when a quorum has fewer than `need` secrets that arrived, naming those that arrived and
 * why each other one did not. The status is the one every missing share shares (77 all denied,
 * 69 all unavailable...), else 69.
 */
export function checkQuorums(quorums: readonly Quorum[], values: ReadonlyMap<string, SecretValue>): void {
  for (const q of quorums) {
    const arrived = q.names.filter((n) => values.get(n)?.skipped === undefined);
    if (arrived.length >= q.need) continue;
    const missing = q.names.filter((n) => !arrived.includes(n));
    const codes = new Set<ExitCode>(missing.map((n) => values.get(n)?.skipped?.exitCode ?? EXIT.unavailable));
    const exit = codes.size === 1 ? [...codes][0]! : EXIT.unavailable;
    const why = missing.map((n) => `${n} (${values.get(n)?.skipped?.why ?? 'not read'})`).join('; ');
    throw new InitError(
      exit,
      `${q.what}: needs ${q.need} of its ${q.names.length} shares, ${arrived.length} arrived (${arrived.join(', ') || 'none'}); not arrived: ${why}`,
      { arrived, missing },
    );
  }
}
