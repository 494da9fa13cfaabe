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
import { createPki, issue, leaf, type Pki } from '../helpers/pki.ts';
import { Lines } from '../helpers/lines.ts';
import { needsPostgres, PG_BIN } from '../helpers/postgres.ts';

/** An initdb oneshot, then the postgres preset on loopback `port`, both as the postgres user. */
function pgProcesses(port: number) {
  const env = { PATH: `${PG_BIN}:/usr/bin:/bin` };
  return {
    initdb: { command: ['initdb', '-D', '{{output.dir}}/pgdata', '--no-sync', '-E', 'UTF8', '--locale=C', '-U', 'postgres'], oneshot: true, user: 'postgres', env },
    db: { preset: 'postgres', with: { port, listenAddresses: ['127.0.0.1'] }, after: ['initdb'], user: 'postgres', env },
  };
}

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
    const config = b.config({
      log: { level: 'info' },
      fetch: { deadline: '60s', attemptTimeout: '10s', backoff: { initial: '20ms', max: '200ms' } },
      output: { dir: out },
      processes: pgProcesses(port),
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

  test('rotation: a new certificate version reaches postgres by SIGHUP; new connections see it, an open session stays', async (t) => {
    if (!needsPostgres(t)) return;
    const port = await freePort();
    const out = `/dev/shm/tee-init-pg-${randomBytes(4).toString('hex')}`;
    const tag = randomBytes(3).toString('hex');
    const [certRef, keyRef] = [`projects/alice-proj/secrets/pg-cert-${tag}`, `projects/alice-proj/secrets/pg-key-${tag}`];
    b.world.addSecret(certRef, readFileSync(pki.server.cert));
    b.world.addSecret(keyRef, readFileSync(pki.server.key));
    const rotated = issue(pki.dir, pki.ca, 'pg-rotated', 'tee-init rotated postgres', leaf('serverAuth', ['DNS:localhost', 'IP:127.0.0.1']));
    const config = b.config({
      log: { level: 'info' },
      fetch: { deadline: '60s', attemptTimeout: '10s', backoff: { initial: '20ms', max: '200ms' } },
      output: { dir: out },
      processes: pgProcesses(port),
      refresh: { every: '1h' },
    });
    delete (config as Record<string, unknown>).run;
    const secrets = config.secrets as Record<string, Record<string, unknown>>;
    secrets.cert = { ...secrets.cert, ref: `${certRef}/versions/latest` };
    secrets.key = { ...secrets.key, ref: `${keyRef}/versions/latest` };
    const { proc, log } = b.start(config);
    const conn = `host=127.0.0.1 port=${port} user=postgres dbname=postgres connect_timeout=5 sslmode=verify-full sslrootcert=${pki.ca.cert} sslcert=${pki.client.cert} sslkey=${pki.client.key}`;
    const served = async () => (await execa('openssl', ['s_client', '-starttls', 'postgres', '-connect', `127.0.0.1:${port}`, '-CAfile', pki.ca.cert], { input: '', reject: false, timeout: 15_000 })).stdout;
    let session: ReturnType<typeof execa> | undefined;
    try {
      await log.waitFor('all units ready', 60_000);
      assert.match(await served(), /subject=.*tee-init test server/);
      // An open session, asked for its backend pid before and after.
      session = execa('psql', [conn, '-At'], { stdin: 'pipe', reject: false });
      const lines = new Lines(session.stdout!);
      session.stdin!.write('select pg_backend_pid();\n');
      const pid = await lines.next(15_000);

      b.world.addVersion(certRef, readFileSync(rotated.cert));
      b.world.addVersion(keyRef, readFileSync(rotated.key));
      const from = log.records.length;
      proc.kill('SIGHUP');
      const line = await log.waitFor((r) => log.records.indexOf(r) >= from && r.message.startsWith('refresh: rotated'), 30_000);
      assert.match(line.message, /reloaded db \(SIGHUP\)/);
      // The postmaster re-reads the files on SIGHUP, before the next connection it accepts.
      // (No event says it has: poll, each try a new connection.)
      let seen = '';
      for (const t0 = Date.now(); !/tee-init rotated postgres/.test(seen) && Date.now() - t0 < 15_000;) seen = await served();
      assert.match(seen, /subject=.*tee-init rotated postgres/);
      const fresh = await execa('psql', [conn, '-Atc', 'select 1'], { reject: false });
      assert.equal(fresh.exitCode, 0, fresh.stderr);
      session.stdin!.write('select pg_backend_pid();\n');
      assert.equal(await lines.next(15_000), pid, 'the session opened before the rotation is the same backend');
      session.stdin!.end();
      await session;
    } finally {
      session?.kill();
      proc.kill('SIGTERM');
    }
    assert.equal((await proc).exitCode, 0, log.text);
    assert.equal(existsSync(out), false);
  });
});
