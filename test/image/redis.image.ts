// Runs after the rest of `npm test`, alone (test/image/*.image.ts, not *.test.ts): building an
// image keeps both cores busy for minutes, and the timing-sensitive tests must not share them.
// The redis image, built for real (scripts/image.ts: buildah on stand-in bases from Debian
// packages) and run with podman + runc as Confidential Space would run it: tee-init PID 1, file
// secrets mounted read-only, /dev/shm a tmpfs, a published port, `podman stop`. Needs root and
// the container tools; under CI=true a missing one fails the test with the reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildImage, containersEnv, root, type Built } from '../../scripts/image.ts';
import { policyLabels } from '../helpers/labels.ts';
import { startLineArgs } from '../helpers/init.ts';
import { assertNothingPrinted, follow, podman, podmanOk, publishedPort, ready, runWithFileSecrets } from '../helpers/image.ts';
import { createPki, issue, leaf, type Pki } from '../helpers/pki.ts';

const redisCli = (pki: Pki, port: number, withCert: boolean) =>
  spawnSync('redis-cli', ['--tls', '--cacert', pki.ca.cert, ...(withCert ? ['--cert', pki.client.cert, '--key', pki.client.key] : []), '-h', '127.0.0.1', '-p', String(port), 'ping'], {
    encoding: 'utf8',
    timeout: 20_000,
  });

/** docs/operations.md "The image": the property table (user and launch-policy labels). */
function readmeImageTable(): Map<string, string> {
  const readme = readFileSync(join(root, 'docs', 'operations.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## The image'), readme.indexOf('## Supervision'));
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `?([\w.]+)`? \| `([^`]*)`/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

const tmpConfig = (shm: string) => `
# The redis example's shape with file secrets (a mounted read-only directory) instead of GCP.
secrets:
  ca:   { source: file, path: /secrets/ca.crt, file: ca.pem }
  cert: { source: file, path: /secrets/server.crt, file: server.crt }
  key:  { source: file, path: /secrets/server.key, file: server.key, mode: "0400" }
output:
  dir: ${shm}/tee-init
  owner: "65532"
run:
  preset: redis
  with: { tlsPort: 16379 }
  user: "65532"
  gracePeriod: 10s
refresh: { every: 1h }              # SIGHUP refreshes now: the test rotates the certificate that way
`;

test('image: built on stand-in bases and run with podman as Confidential Space would', { timeout: 20 * 60_000 }, async (t) => {
  if (!ready(t, [['redis-cli', 'apt-get install redis-tools']])) return;
  const logs: string[] = [];
  const built: Built = buildImage('redis', { log: (s) => logs.push(s) });
  t.diagnostic(`built ${built.id} (digest ${built.digest}) in ${built.seconds.bases.toFixed(0)} s (bases) + ${built.seconds.image.toFixed(0)} s (image)`);
  const img = built.tag;
  const inspect = JSON.parse(podmanOk(['image', 'inspect', img]))[0] as { Config: { User?: string; Entrypoint: string[]; Labels: Record<string, string> }; Size: number };
  t.diagnostic(`image size ${(inspect.Size / 1e6).toFixed(0)} MB`);

  await t.test('the baked config (examples/redis) passes `tee-init check` inside the image', () => {
    const r = podman(['run', '--rm', '--network', 'none', img, 'check']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^config \/etc\/tee-init\/tee-init\.yaml: OK/);
    assert.match(r.stdout, /run +redis-server --port 0 --tls-port 16379 /);
    const baked = readFileSync(join(root, 'examples', 'redis', 'tee-init.yaml'), 'utf8');
    const inImage = podmanOk(['run', '--rm', '--network', 'none', '--entrypoint', '/nodejs/bin/node', img, '-e', 'process.stdout.write(require("fs").readFileSync("/etc/tee-init/tee-init.yaml","utf8"))']);
    assert.equal(inImage, baked.trim());
  });

  await t.test('tee-init is PID 1 and returns the child\'s status', () => {
    const r = podman(['run', '--rm', '--network', 'none', '-e', 'TEE_INIT_CONFIG=', img, '--', '/nodejs/bin/node', '-e', 'process.exit(process.ppid === 1 ? 3 : 4)']);
    assert.equal(r.status, 3, `child's parent is not PID 1, or its status was lost:\n${r.stderr}`);
    assert.match(r.stderr, /"pid":1,/);
  });

  await t.test('`podman stop` forwards SIGTERM and the container exits with the child\'s status', async () => {
    const name = `tee-init-test-stop-${process.pid}`;
    const trap = "process.on('SIGTERM', () => process.exit(42)); console.log('trapping'); setInterval(() => {}, 1000)";
    let logs: ReturnType<typeof follow> | undefined;
    try {
      podmanOk(['run', '-d', '--name', name, '--network', 'none', '-e', 'TEE_INIT_CONFIG=', img, '--', '/nodejs/bin/node', '-e', trap]);
      logs = follow(name);
      await logs.out.until(/trapping/, 60_000);
      podmanOk(['stop', '-t', '20', name]);
      assert.equal(podmanOk(['inspect', '--format', '{{.State.ExitCode}}', name]), '42');
    } finally {
      logs?.stop();
      podman(['rm', '-f', name]);
    }
  });

  await t.test('redis with file secrets: PONG over mutual TLS on a published port; no certificate, no entry; stop leaves the tmpfs empty', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tee-init-image-'));
    // The container's /dev/shm is a host tmpfs directory, so the test sees what tee-init leaves.
    const shm = mkdtempSync('/dev/shm/tee-init-image-');
    const name = `tee-init-test-redis-${process.pid}`;
    let logs: ReturnType<typeof follow> | undefined;
    try {
      const pki = createPki(join(work, 'pki'));
      logs = runWithFileSecrets(img, name, { work, pki, config: tmpConfig('/dev/shm'), shm, port: 16379 });
      await logs.out.until(/Ready to accept connections/, 60_000);
      const port = publishedPort(name, 16379);
      const secrets = join(work, 'secrets');

      const pong = redisCli(pki, port, true);
      assert.equal(pong.stdout.trim(), 'PONG', pong.stderr);
      const refused = redisCli(pki, port, false);
      assert.notEqual(refused.stdout.trim(), 'PONG');
      assert.match(`${refused.stdout}${refused.stderr}`, /error|fail|reset|closed/i, 'a client without a certificate must be refused');

      // Rotation inside the image: a new certificate in the mounted directory, SIGHUP to the
      // container; the preset's reload (redis-cli CONFIG SET, as nonroot, through the admin
      // socket) makes redis serve it to new connections without a restart.
      const next = issue(pki.dir, pki.ca, 'server2', 'tee-init rotated server', leaf('serverAuth', ['DNS:localhost', 'IP:127.0.0.1']));
      for (const [from, to] of [[next.key, 'server.key'], [next.cert, 'server.crt']] as const) {
        copyFileSync(from, join(secrets, `${to}.new`));
        renameSync(join(secrets, `${to}.new`), join(secrets, to));
      }
      podmanOk(['kill', '--signal', 'HUP', name]);
      await logs.out.until(/refresh: rotated cert, key; reloaded run \(exec redis-cli\)/, 60_000);
      const served = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki.ca.cert, '-cert', pki.client.cert, '-key', pki.client.key], { input: '', encoding: 'utf8', timeout: 20_000 });
      assert.match(served.stdout, /subject=.*tee-init rotated server/, served.stderr);
      assert.equal(redisCli(pki, port, true).stdout.trim(), 'PONG');

      // tee-init is PID 1 as root; redis runs as nonroot (65532), its child.
      const top = podmanOk(['top', name, 'pid', 'ppid', 'user', 'args']).split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      const init = top.find((r) => r[0] === '1');
      const redis = top.find((r) => r[3]?.includes('redis-server'));
      assert.deepEqual([init?.[2], init?.[3]], ['root', '/nodejs/bin/node'], JSON.stringify(top));
      assert.deepEqual([redis?.[1], redis?.[2]], ['1', 'nonroot'], JSON.stringify(top));

      // The secrets: on the tmpfs, owned by the program's user, 0400, in a 0700 directory.
      assert.equal(statSync(shm, { throwIfNoEntry: false }) !== undefined, true);
      const out_ = join(shm, 'tee-init');
      assert.equal(statSync(out_).mode & 0o777, 0o700);
      for (const f of ['ca.pem', 'server.crt', 'server.key']) {
        const st = statSync(join(out_, f));
        assert.equal(st.uid, 65532, f);
        assert.equal(st.mode & 0o777, 0o400, f);
      }
      // The secrets mount is read-only.
      const mounts = JSON.parse(podmanOk(['inspect', '--format', '{{json .Mounts}}', name])) as { Destination: string; RW: boolean }[];
      assert.equal(mounts.find((m) => m.Destination === '/secrets')?.RW, false);

      podmanOk(['stop', '-t', '20', name]);
      // redis exits 0 on SIGTERM; the container's status is the child's.
      assert.equal(podmanOk(['inspect', '--format', '{{.State.ExitCode}}', name]), '0');
      assert.deepEqual(readdirSync(shm), [], 'tee-init must leave the tmpfs empty');

      // No secret byte in anything the container printed (tee-init at its configured level,
      // redis) nor in its recorded command line and environment.
      assert.match(assertNothingPrinted(name, [pki.server.key, pki.server.cert, pki.ca.cert]), /child started/);
    } finally {
      logs?.stop();
      podman(['rm', '-f', name]);
      rmSync(shm, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    }
  });

  await t.test('user and launch-policy labels are the README\'s', () => {
    const table = readmeImageTable();
    assert.ok(table.size >= 4, `docs/operations.md "The image" table: ${JSON.stringify([...table])}`);
    const user = inspect.Config.User || 'root';
    assert.equal(user === '0' ? 'root' : user, table.get('user'));
    const skopeo = spawnSync('skopeo', ['inspect', `containers-storage:${img}`], { env: containersEnv(), encoding: 'utf8' });
    assert.equal(skopeo.status, 0, skopeo.stderr);
    const labels = (JSON.parse(skopeo.stdout) as { Labels: Record<string, string> }).Labels;
    const policy = Object.entries(labels).filter(([k]) => k.startsWith('tee.launch_policy.'));
    const documented = [...table].filter(([k]) => k.startsWith('tee.launch_policy.'));
    assert.deepEqual(Object.fromEntries(policy), Object.fromEntries(documented));
    // And what `tee-init labels` says the baked-in config needs.
    const printed = spawnSync(process.execPath, ['--disable-sigusr1', join(root, 'dist', 'tee-init.js'), 'labels', '--config', join(root, 'examples', 'redis', 'tee-init.yaml')], { encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    assert.deepEqual(Object.fromEntries(policy), policyLabels(printed.stdout));
    // node with the bundle's start-line flags (--disable-sigusr1, the heap bounds), no shell.
    assert.deepEqual(inspect.Config.Entrypoint, ['/nodejs/bin/node', ...startLineArgs, '/opt/tee-init/tee-init.js']);
  });

  await t.test('no shell in the image (no executable or link named like one)', () => {
    const walk = `const fs = require('fs'), path = require('path'); const found = [];
      (function walk(d) { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) { if (!['/proc', '/sys', '/dev'].includes(p)) walk(p); }
        else if (/^(sh|bash|dash|ash|zsh|busybox|toybox)$/.test(e.name) && (e.isSymbolicLink() || (fs.statSync(p).mode & 0o111))) found.push(p);
      } })('/');
      console.log(JSON.stringify(found));`;
    assert.equal(podmanOk(['run', '--rm', '--network', 'none', '--entrypoint', '/nodejs/bin/node', img, '-e', walk]), '[]');
    const sh = podman(['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', img, '-c', 'true']);
    assert.notEqual(sh.status, 0);
  });

  await t.test('building again from scratch (no cache) gives the same image digest', () => {
    const again = buildImage('redis', { noCache: true, log: (s) => logs.push(s) });
    t.diagnostic(`rebuilt without cache in ${again.seconds.image.toFixed(0)} s`);
    assert.equal(again.id, built.id);
    assert.equal(again.digest, built.digest);
  });

  await t.test('nothing is left behind: no container, no mounted working container', () => {
    assert.equal(podmanOk(['ps', '-a', '-q']), '');
    const working = spawnSync('buildah', ['containers', '-q'], { env: containersEnv(), encoding: 'utf8' });
    assert.equal(working.stdout.trim(), '', 'buildah working containers keep layers mounted under .cache');
  });
});
