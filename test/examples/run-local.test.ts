// Every example on the emulated world, as a user runs it: each examples/*/run-local.ts (one
// command, real clients, a clean stop, exit 0 and an "OK:" line), and each example's config
// through `tee-init check` exactly as its README shows it. Run one at a time: the examples
// listen on the fixed ports their configs document.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { execa } from 'execa';
import { bundle, node, root } from '../helpers/init.ts';
import { needs, needsPython } from '../helpers/tools.ts';
import { needsPostgres } from '../helpers/postgres.ts';

const examples = join(root, 'examples');
const dirs = readdirSync(examples, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);

/** What each run-local needs beyond node (a missing tool skips, in CI fails: see needs()). */
const requirements: Record<string, (t: TestContext) => boolean> = {
  psk: (t) => needs(t, 'redis-server', 'apt-get install redis-server') && needs(t, 'redis-cli', 'apt-get install redis-tools'),
  'psk-threshold': (t) => needs(t, 'redis-server', 'apt-get install redis-server') && needs(t, 'openssl', 'apt-get install openssl'),
  redis: (t) => needs(t, 'redis-server', 'apt-get install redis-server') && needs(t, 'redis-cli', 'apt-get install redis-tools') && needs(t, 'openssl', 'apt-get install openssl'),
  postgres: (t) => needsPostgres(t),
  'envoy-http': (t) => needs(t, 'openssl', 'apt-get install openssl'),
  'envoy-network': (t) => needs(t, 'openssl', 'apt-get install openssl'),
  'egress-id-token': (t) => needs(t, 'openssl', 'apt-get install openssl') && needsPython(t, 'google.auth', 'apt-get install python3-google-auth') && needsPython(t, 'requests', 'apt-get install python3-requests'),
  'mtls-permissive': (t) => needs(t, 'python3', 'apt-get install python3') && needs(t, 'curl', 'apt-get install curl') && needs(t, 'openssl', 'apt-get install openssl'),
  'cloud-run-tunnel': (t) => needs(t, 'openssl', 'apt-get install openssl'),
};

describe('examples: one command each, on the emulated world', { concurrency: 1 }, () => {
  test('every example with a config has a run-local.ts, and each one is listed here', () => {
    const withRunLocal = dirs.filter((d) => existsSync(join(examples, d, 'run-local.ts')));
    for (const d of dirs.filter((x) => x !== 'local')) assert.ok(withRunLocal.includes(d), `examples/${d}/run-local.ts`);
    assert.deepEqual(withRunLocal.sort(), Object.keys(requirements).sort());
  });

  for (const name of Object.keys(requirements)) {
    test(`examples/${name}/run-local.ts proves the example and stops cleanly`, async (t) => {
      if (!requirements[name]!(t)) return;
      const r = await execa(node, [join(examples, name, 'run-local.ts')], { reject: false, all: true, timeout: 60_000, env: { TEE_INIT_BUNDLE: bundle } });
      assert.equal(r.exitCode, 0, String(r.all));
      assert.match(String(r.stdout), /^OK: /m, String(r.all));
      assert.doesNotMatch(String(r.all), /FAILED/);
    });
  }
});

describe('examples: each config passes `tee-init check` as its README shows it', () => {
  for (const name of dirs.filter((d) => existsSync(join(examples, d, 'tee-init.yaml')))) {
    test(`examples/${name}`, async (t) => {
      // examples/local reads files its README makes first (make-dev-secrets.sh, once).
      const make = join(examples, name, 'make-dev-secrets.sh');
      if (existsSync(make) && !existsSync(join(examples, name, 'dev-secrets'))) {
        if (!needs(t, 'openssl', 'apt-get install openssl')) return;
        await execa('sh', [make]);
      }
      const readme = readFileSync(join(examples, name, 'README.md'), 'utf8');
      // `node dist/tee-init.js check --config examples/X/...` runs from the repository's root;
      // `tee-init check --config tee-init.yaml` from the example's directory.
      const shown = [...readme.matchAll(/(?:node dist\/tee-init\.js|tee-init) check (--config [^`\n]+)/g)].map((m) => m[1]!.trim().split(/\s+/));
      const runs = shown.length > 0 ? shown : [['--config', 'tee-init.yaml']];
      for (const args of runs) {
        const cwd = args[1]!.startsWith('examples/') ? root : join(examples, name);
        const r = await execa(node, ['--disable-sigusr1', bundle, 'check', ...args], { cwd, reject: false, all: true });
        assert.equal(r.exitCode, 0, `tee-init check ${args.join(' ')} (in ${cwd}):\n${String(r.all)}`);
        assert.match(String(r.stdout), /: OK$/m);
      }
    });
  }
});
