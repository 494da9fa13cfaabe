// The postgres preset, end to end: secrets from the emulated Secret Manager, an initdb oneshot
// on tmpfs, the server started after it with TLS and certificate authentication, psql as the
// independent client (verify-full with a client certificate; refused without one), and a
// fast shutdown by SIGINT when the init is stopped.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { boot, type Boot } from '../helpers/boot.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, type Pki } from '../helpers/pki.ts';
import { needsPostgres, PG_BIN } from '../helpers/postgres.ts';

describe('postgres preset with an initdb oneshot', () => {
  let b: Boot;
  let pki: Pki;
  before(async () => {
    pki = createPki(join('/dev/shm', `tee-init-pg-pki-${randomBytes(4).toString('hex')}`), { clientName: 'postgres' });
    const pem = { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) };
    b = await boot({ pem });
  });
  after(async () => {
    await b?.close();
    if (pki) (await import('node:fs')).rmSync(pki.dir, { recursive: true, force: true });
  });

  test('psql with a client certificate over verify-full; refused without one; SIGINT on stop; nothing left', async (t) => {
    if (!needsPostgres(t)) return;
    const port = await freePort();
    // Outside the test's 0700 directory: the postgres user must reach it.
    const out = `/dev/shm/tee-init-pg-${randomBytes(4).toString('hex')}`;
    const env = { PATH: `${PG_BIN}:/usr/bin:/bin` };
    const config = b.config({
      log: { level: 'info' },
      fetch: { deadline: '60s', attemptTimeout: '10s', backoff: { initial: '20ms', max: '200ms' } },
      output: { dir: out },
      processes: {
        initdb: { command: ['initdb', '-D', '{{output.dir}}/pgdata', '--no-sync', '-E', 'UTF8', '--locale=C', '-U', 'postgres'], oneshot: true, user: 'postgres', env },
        db: { preset: 'postgres', with: { port, listenAddresses: ['127.0.0.1'] }, after: ['initdb'], user: 'postgres', env },
      },
    });
    delete (config as Record<string, unknown>).run;
    const { proc, log } = b.start(config);
    const conn = (extra: string) => `host=127.0.0.1 port=${port} user=postgres dbname=postgres connect_timeout=5 ${extra}`;
    try {
      await log.waitFor('all units ready', 60_000);
      assert.match(log.find('db ready')!.check as string, new RegExp(`^unix ${out}/\\.s\\.PGSQL\\.${port}$`));
      const ok = await execa('psql', [conn(`sslmode=verify-full sslrootcert=${pki.ca.cert} sslcert=${pki.client.cert} sslkey=${pki.client.key}`), '-Atc', 'select ssl, version from pg_stat_ssl where pid = pg_backend_pid()'], { reject: false });
      assert.equal(ok.exitCode, 0, ok.stderr);
      assert.match(ok.stdout.trim(), /^t\|TLSv1\.[23]$/);
      const noCert = await execa('psql', [conn(`sslmode=verify-full sslrootcert=${pki.ca.cert}`), '-c', 'select 1'], { reject: false, env: { PGSSLCERT: '/nonexistent', PGSSLKEY: '/nonexistent' } });
      assert.notEqual(noCert.exitCode, 0);
      assert.match(noCert.stderr, /certificate/i);
      const plain = await execa('psql', [conn('sslmode=disable'), '-c', 'select 1'], { reject: false });
      assert.notEqual(plain.exitCode, 0);
      assert.match(plain.stderr, /no pg_hba\.conf entry .*no encryption/);
    } finally {
      proc.kill('SIGTERM');
    }
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    const stopping = log.find('stopping db with SIGINT')!;
    assert.equal(stopping.unit, 'db', 'postgres gets its fast-shutdown signal');
    assert.equal(existsSync(out), false, 'the data directory went with the output directory');
  });
});
