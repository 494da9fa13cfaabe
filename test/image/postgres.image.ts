// Runs after the rest of `npm test`, alone (see redis.image.ts). The PostgreSQL image built for
// real (scripts/image.ts, Dockerfile.postgres on a stand-in of the official postgres:15-bookworm)
// and run with podman + runc as Confidential Space would run it, with the baked example's
// processes (an initdb oneshot on tmpfs, then the postgres preset) and file secrets: psql
// verify-full with a client certificate on a published port, `podman stop` a clean 0 (SIGTERM
// to tee-init, SIGINT to postgres by the preset), nothing left on the tmpfs, no secret printed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { buildImage, containersEnv, root, type Built } from '../../scripts/image.ts';
import { assertNothingPrinted, type follow, podman, podmanOk, publishedPort, ready, runWithFileSecrets } from '../helpers/image.ts';
import { policyLabels } from '../helpers/labels.ts';
import { startLineArgs } from '../helpers/init.ts';
import { createPki, type Pki } from '../helpers/pki.ts';

const EXAMPLE = join(root, 'examples', 'postgres', 'tee-init.yaml');

/** The baked example as it is (processes, output, refresh), its GCP secrets replaced by files
 *  in a mounted read-only directory: the container has no cloud to attest to. */
function fileSecretsConfig(): string {
  const config = parse(readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
  delete config.attestation;
  delete config.credentials;
  config.secrets = {
    ca: { source: 'file', path: '/secrets/ca.crt', file: 'ca.pem' },
    cert: { source: 'file', path: '/secrets/server.crt', file: 'server.crt' },
    key: { source: 'file', path: '/secrets/server.key', file: 'server.key' },
  };
  return stringify(config);
}

const psql = (pki: Pki, port: number, withCert: boolean) =>
  spawnSync('psql', [`host=127.0.0.1 port=${port} user=postgres dbname=postgres connect_timeout=10 sslmode=verify-full sslrootcert=${pki.ca.cert}${withCert ? ` sslcert=${pki.client.cert} sslkey=${pki.client.key}` : ''}`, '-Atc', 'select ssl, version from pg_stat_ssl where pid = pg_backend_pid()'], {
    encoding: 'utf8',
    timeout: 30_000,
    // libpq would otherwise pick up ~/.postgresql/postgresql.crt for the no-certificate case.
    env: { ...process.env, PGSSLCERT: '/nonexistent', PGSSLKEY: '/nonexistent' },
  });

test('postgres image: initdb then postgres under tee-init, with podman as Confidential Space would', { timeout: 20 * 60_000 }, async (t) => {
  if (!ready(t, [['psql', 'apt-get install postgresql-client']])) return;
  const built: Built = buildImage('postgres', { log: (s) => t.diagnostic(s) });
  t.diagnostic(`built ${built.id} (digest ${built.digest}) in ${built.seconds.bases.toFixed(0)} s (bases) + ${built.seconds.image.toFixed(0)} s (image)`);
  const img = built.tag;
  const inspect = JSON.parse(podmanOk(['image', 'inspect', img]))[0] as { Config: { User?: string; Entrypoint: string[]; Cmd?: string[]; StopSignal?: string; Labels: Record<string, string> }; Size: number };
  t.diagnostic(`image size ${(inspect.Size / 1e6).toFixed(0)} MB`);

  await t.test('the baked config (examples/postgres) passes `tee-init check` in the image: its users and PATH resolve there', () => {
    const r = podman(['run', '--rm', '--network', 'none', img, 'check']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^config \/etc\/tee-init\/tee-init\.yaml: OK/);
    assert.match(r.stdout, /process initdb +initdb -D \/dev\/shm\/tee-init\/pgdata /);
    assert.match(r.stdout, /output +\/dev\/shm\/tee-init, must be tmpfs, owner 999:999/);
    const inImage = podmanOk(['run', '--rm', '--network', 'none', '--entrypoint', '/nodejs/bin/node', img, '-e', 'process.stdout.write(require("fs").readFileSync("/etc/tee-init/tee-init.yaml","utf8"))']);
    assert.equal(inImage, readFileSync(EXAMPLE, 'utf8').trim());
  });

  await t.test('psql verify-full with a client certificate on a published port; none, no entry; stop is 0 by SIGINT to postgres; the tmpfs is left empty', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tee-init-image-pg-'));
    // The container's /dev/shm is a host tmpfs directory: the test sees what is left there
    // (the secrets, the data directory, the socket, PostgreSQL's dynamic shared memory).
    const shm = mkdtempSync('/dev/shm/tee-init-image-pg-');
    const name = `tee-init-test-postgres-${process.pid}`;
    let logs: ReturnType<typeof follow> | undefined;
    try {
      const pki = createPki(join(work, 'pki'), { clientName: 'postgres' });
      logs = runWithFileSecrets(img, name, { work, pki, config: fileSecretsConfig(), shm, port: 5432 });
      await logs.out.until(/all units ready/, 120_000);
      const port = publishedPort(name, 5432);

      const ok = psql(pki, port, true);
      assert.equal(ok.status, 0, ok.stderr);
      assert.match(ok.stdout.trim(), /^t\|TLSv1\.[23]$/);
      const refused = psql(pki, port, false);
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /certificate/i, 'a client without a certificate must be refused');

      // tee-init is PID 1 as root; postgres runs as the image's postgres user, its child.
      const top = podmanOk(['top', name, 'pid', 'ppid', 'user', 'args']).split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      const init = top.find((r) => r[0] === '1');
      const postmaster = top.find((r) => r[1] === '1' && r[3]?.includes('postgres'));
      assert.deepEqual([init?.[2], init?.[3]], ['root', '/nodejs/bin/node'], JSON.stringify(top));
      assert.equal(postmaster?.[2], 'postgres', JSON.stringify(top));

      // The secrets: on the tmpfs, owned by postgres (999), 0400 (PostgreSQL demands it of its key).
      const out = join(shm, 'tee-init');
      assert.equal(statSync(out).mode & 0o777, 0o700);
      for (const f of ['ca.pem', 'server.crt', 'server.key']) {
        const st = statSync(join(out, f));
        assert.equal(st.uid, 999, f);
        assert.equal(st.mode & 0o777, 0o400, f);
      }

      // The image's STOPSIGNAL is SIGTERM (not the official image's SIGINT): tee-init's stop,
      // which the preset turns into postgres's fast shutdown.
      podmanOk(['stop', '-t', '60', name]);
      assert.equal(podmanOk(['inspect', '--format', '{{.State.ExitCode}}', name]), '0');
      await logs.out.until(/stopping db with SIGINT/, 10_000);
      assert.deepEqual(readdirSync(shm), [], 'tee-init must leave the tmpfs empty');
      assert.match(assertNothingPrinted(name, [pki.server.key, pki.server.cert, pki.ca.cert]), /database system is ready to accept connections/);
    } finally {
      logs?.stop();
      // -v: the official image's VOLUME gives every container an anonymous volume.
      podman(['rm', '-f', '-v', name]);
      rmSync(shm, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  });

  await t.test('labels are what `tee-init labels` prints for the baked config; the official image\'s CMD and STOPSIGNAL are undone', () => {
    const skopeo = spawnSync('skopeo', ['inspect', `containers-storage:${img}`], { env: containersEnv(), encoding: 'utf8' });
    assert.equal(skopeo.status, 0, skopeo.stderr);
    const labels = (JSON.parse(skopeo.stdout) as { Labels: Record<string, string> }).Labels;
    const policy = Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith('tee.launch_policy.')));
    const printed = spawnSync(process.execPath, ['--disable-sigusr1', join(root, 'dist', 'tee-init.js'), 'labels', '--config', EXAMPLE], { encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    assert.deepEqual(policy, policyLabels(printed.stdout));
    assert.deepEqual(policy, policyLabels(readFileSync(join(root, 'Dockerfile.postgres'), 'utf8')));
    assert.equal(inspect.Config.User, 'root');
    // node with the bundle's start-line flags (--disable-sigusr1, the heap bounds), no shell.
    assert.deepEqual(inspect.Config.Entrypoint, ['/nodejs/bin/node', ...startLineArgs, '/opt/tee-init/tee-init.js']);
    // A CMD left from the base would be given to tee-init as the program to run.
    assert.deepEqual(inspect.Config.Cmd ?? [], []);
    assert.equal(inspect.Config.StopSignal, 'SIGTERM');
  });

  await t.test('the shell initdb needs is there (popen runs /bin/sh -c)', () => {
    const sh = podman(['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', img, '-c', 'echo ok']);
    assert.equal(sh.stdout, 'ok', sh.stderr);
  });

  await t.test('building again from scratch (no cache) gives the same image digest', () => {
    const again = buildImage('postgres', { noCache: true, log: (s) => t.diagnostic(s) });
    t.diagnostic(`rebuilt without cache in ${again.seconds.image.toFixed(0)} s`);
    assert.equal(again.id, built.id);
    assert.equal(again.digest, built.digest);
  });

  await t.test('nothing is left behind: no container, no volume, no mounted working container', () => {
    assert.equal(podmanOk(['ps', '-a', '-q']), '');
    assert.equal(podmanOk(['volume', 'ls', '-q']), '');
    const working = spawnSync('buildah', ['containers', '-q'], { env: containersEnv(), encoding: 'utf8' });
    assert.equal(working.stdout.trim(), '', 'buildah working containers keep layers mounted under .cache');
  });
});
