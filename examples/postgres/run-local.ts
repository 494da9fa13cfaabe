// This example on one machine, with no cloud:  node examples/postgres/run-local.ts
// (after `npm ci && npm run build`; needs PostgreSQL 15 (Debian's postgresql), psql, openssl,
// and root: initdb and postgres run as the user postgres, as in the image).
// The emulated Confidential Space (test/fakes) holds alice's server certificate and key and
// bob's client CA; tee-init boots from tee-init.yaml beside this file (only the token file,
// the endpoints and the output dir differ): initdb on tmpfs, then PostgreSQL with TLS; psql
// connects with sslmode=verify-full and a client certificate whose CN is the database user.
import { readFileSync } from 'node:fs';
import { runLocal } from '../run-local-lib.ts';

await runLocal('PostgreSQL with TLS and client certificates (examples/postgres), on an emulated Confidential Space', async (l) => {
  const pki = l.pki({ clientName: 'postgres' });
  const config = l.config('postgres');
  l.serve(config, { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) });
  const init = l.boot('postgres', config);
  const initdb = await init.waitFor('initdb exited');
  const ready = await init.waitFor('all units ready', 60_000);
  l.say(`\ninitdb exited with ${initdb.status}; units ${(ready.units as string[]).join(', ')} ready in ${ready.ms} ms`);

  // A certificate file that does not exist is no certificate at all (libpq sends none).
  const conninfo = (cert: string, key: string) =>
    `host=localhost port=5432 user=postgres dbname=postgres sslmode=verify-full sslrootcert=${pki.ca.cert} sslcert=${cert} sslkey=${key}`;
  const sql = 'SELECT ssl.version, ssl.client_dn FROM pg_stat_ssl ssl WHERE ssl.pid = pg_backend_pid()';
  const row = await l.run('psql', [conninfo(pki.client.cert, pki.client.key), '-tAc', sql]);
  l.say(`psql "sslmode=verify-full sslcert=client.crt (CN=postgres) …" -> ${row}`);
  if (!/^TLSv1\.[23]\|\/CN=postgres$/.test(row)) throw new Error(`unexpected answer: ${row}`);
  const noCert = await l.run('psql', [conninfo(`${l.dir}/none.crt`, `${l.dir}/none.key`), '-tAc', 'SELECT 1'])
    .catch((err: Error) => `refused (${/FATAL: +(.*)$/m.exec(err.message)?.[1] ?? err.message})`);
  l.say(`psql without a client certificate -> ${noCert}`);
  if (noCert === '1') throw new Error('PostgreSQL let a client in without a certificate');
  return 'PostgreSQL, initialised on tmpfs at boot, served TLS with alice\'s certificate and let in the client certificate of bob\'s CA as its CN; a client without one was refused.';
});
