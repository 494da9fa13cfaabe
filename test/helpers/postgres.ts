// PostgreSQL for the tests: Debian's binaries, which run only as the postgres user (initdb refuses root).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { isRoot, needs } from './tools.ts';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Like needs(): postgres, psql and openssl present and root to switch users; in CI a failure. */
export function needsPostgres(t: TestContext): boolean {
  if (!needs(t, 'psql', 'apt-get install postgresql') || !needs(t, 'openssl', 'apt-get install openssl')) return false;
  if (!existsSync(join(PG_BIN, 'postgres'))) {
    if (process.env.CI) throw new Error(`${PG_BIN}/postgres is missing: CI must install postgresql`);
    t.skip('postgresql is not installed');
    return false;
  }
  if (!isRoot) {
    if (process.env.CI) throw new Error('the postgres test switches to the postgres user: it needs root in CI');
    t.skip('needs root to run initdb/postgres as the postgres user');
    return false;
  }
  return true;
}
