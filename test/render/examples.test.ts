// examples/*/tee-init.yaml follow the DESIGN config contract as far as rendering can tell:
// known sections, secrets that name defined credentials, and a run section that renders
// (Envoy bootstraps pass the schema). The lead's `tee-init check` test covers the full loader.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { configuredListeners } from '../../src/config/schema-listeners.ts';
import { render, type RunSpec, type SecretRef } from '../../src/render/index.ts';
import { needs } from '../helpers/tools.ts';
import { checkSds } from './envoy-sds.ts';
import { envoyValidator, repoRoot } from './envoy-validator.ts';

const examples = join(repoRoot, 'examples');
const SECTIONS = ['log', 'attestation', 'credentials', 'secrets', 'fetch', 'output', 'run', 'processes', 'health', 'psk', 'listeners', 'refresh', 'endpoints'];
const RUN_KEYS = ['preset', 'with', 'command', 'env', 'files', 'user', 'gracePeriod', 'stopSignal', 'reload'];
const PROCESS_KEYS = [...RUN_KEYS, 'after', 'ready', 'oneshot', 'restart', 'signals'];

type Config = Record<string, any>;
const load = (name: string): Config => parse(readFileSync(join(examples, name, 'tee-init.yaml'), 'utf8'));

test('there is one example per use, each with a config and a README', () => {
  const dirs = readdirSync(examples, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  for (const want of ['cloud-run-tunnel', 'egress-id-token', 'envoy-http', 'envoy-network', 'local', 'mtls-permissive', 'postgres', 'psk', 'redis']) assert.ok(dirs.includes(want), `examples/${want}`);
  for (const d of dirs) for (const f of ['tee-init.yaml', 'README.md']) assert.ok(existsSync(join(examples, d, f)), `${d}/${f}`);
});

for (const name of readdirSync(examples, { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(join(examples, d.name, 'tee-init.yaml'))).map((d) => d.name)) {
  test(`example ${name}: its run section (or each of its processes) renders`, async (t) => {
    const c = load(name);
    for (const key of Object.keys(c)) assert.ok(SECTIONS.includes(key), `unknown section ${key}`);
    assert.ok((c.run === undefined) !== (c.processes === undefined), 'run: or processes:, one of them');
    const runs: Config[] = c.run ? [c.run] : Object.values(c.processes);
    for (const r of runs) for (const key of Object.keys(r)) assert.ok((c.run ? RUN_KEYS : PROCESS_KEYS).includes(key), `unknown key ${key}`);
    const secrets: Record<string, SecretRef> = {};
    for (const [sname, s] of Object.entries<Config>(c.secrets ?? {})) {
      assert.ok(['gcp', 'file'].includes(s.source), `secrets.${sname}.source`);
      if (s.source === 'gcp') assert.ok(Object.hasOwn(c.credentials ?? {}, s.credentials), `secrets.${sname}.credentials names a credential`);
      else assert.ok(!s.path.startsWith('/'), `secrets.${sname}.path is relative to the config`);
      secrets[sname] = s.file === undefined ? {} : { path: join(c.output?.dir ?? '/dev/shm/x', s.file) };
    }
    for (const r of runs) {
      const { preset, with: w, command, env, files } = r as RunSpec;
      const rendered = render({ run: { preset, with: w, command, env, files }, secrets, outputDir: c.output?.dir ?? '' });
      if (preset?.startsWith('envoy')) {
        const v = await envoyValidator(t);
        if (!v) return;
        assert.deepEqual(v.validate(v.parseText(rendered.files[0]!.content, 'envoy.yaml'), undefined, { canonical: true }).errors, []);
        checkSds(v, rendered, c.output.dir);
      }
    }
    if (name === 'psk-threshold') {
      const id = c.psk.identities.Client1;
      assert.deepEqual([id.combine, id.threshold, id.shares.length], ['shamir', 2, 3]);
      for (const share of id.shares) assert.equal(c.secrets[share].file, undefined, 'PSK shares stay in memory');
    }
    if (name === 'psk') {
      assert.deepEqual(Object.keys(c.psk.identities.Client1), ['shares', 'combine']);
      for (const share of c.psk.identities.Client1.shares) assert.equal(c.secrets[share].file, undefined, 'PSK shares stay in memory');
    }
  });
}

test('examples/local: make-dev-secrets.sh creates the files the config reads, chained to its CA', (t) => {
  if (!needs(t, 'openssl', 'apt-get install openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-local-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(examples, 'local', 'make-dev-secrets.sh'), join(dir, 'make-dev-secrets.sh'));
  execFileSync('sh', [join(dir, 'make-dev-secrets.sh')], { stdio: 'ignore' });
  const c = load('local');
  for (const s of Object.values<Config>(c.secrets)) assert.ok(existsSync(resolve(dir, s.path)), s.path);
  const secrets = join(dir, 'dev-secrets');
  execFileSync('openssl', ['verify', '-CAfile', join(secrets, 'ca.crt'), join(secrets, 'server.crt'), join(secrets, 'client.crt')], { stdio: 'ignore' });
});

test('examples/mtls-permissive: the full loader accepts it, and its listener is what the README says', () => {
  const { config } = loadConfig(join(examples, 'mtls-permissive', 'tee-init.yaml'));
  const [l] = configuredListeners(config);
  assert.equal(l!.config.type, 'tls');
  assert.equal(l!.config.mode, 'permissive');
  assert.deepEqual(l!.config.http, { xfcc: 'sanitize-set', clientCert: false, headersTimeout: 30_000 });
  for (const n of ['ca', 'cert', 'key']) assert.equal(config.secrets[n]!.file, undefined, `${n} stays in memory`);
});
