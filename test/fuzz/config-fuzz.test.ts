// A config fuzzer: hundreds of generated configs (mutations of the examples and of a small
// grammar of the schema: wrong types, huge numbers, unicode, empty strings, unknown keys, deep
// nesting, YAML anchors, tags, octal/hex, duplicate keys). Every one must end in exit 78 with one
// line per problem, or validate / boot; never 70, a stack trace, a hang, a file outside the
// output directory, or a started child for a config that is refused.
//  - all of them through `check`'s own code, in this process (fast);
//  - a sample through the real bundle: `tee-init check`, and a boot (file secrets, no network).
// The seed is printed; FUZZ_SEED=N reproduces a run, FUZZ_COUNT=N and FUZZ_BOOTS=N change its size.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { parse as parseYaml } from 'yaml';
import { problemsOf } from '../../src/config/load.ts';
import { checkText } from '../../src/plan/text.ts';
import { InitError } from '../../src/lib/errors.ts';
import { mulberry32 } from '../helpers/mulberry32.ts';
import { root, startInit } from '../helpers/init.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 0x7ee1);
const COUNT = Number(process.env.FUZZ_COUNT ?? 600);
const BUNDLE_CHECKS = 16;
const BUNDLE_BOOTS = Number(process.env.FUZZ_BOOTS ?? 16);
const BOOT_TIMEOUT_MS = 60_000;

/** Seeded (mulberry32): the same sequence for the same seed everywhere. */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof rng>;
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

// Values that have broken parsers before: types, sizes, encodings, YAML look-alikes.
const ODD_STRINGS = [
  '', ' ', 'x', 'é', '日本語', '🔑', '\u202egnp.yek', 'a\u0000b', 'line\nbreak', 'tab\there', '..', '../x', '/', '/etc/passwd',
  '{{secrets.nope.path}}', '{{output.dir}}', '{{', '}}', '$(id)', '`id`', '0400', '0o400', '0x1f', '1e400', '9'.repeat(400),
  '-1s', '1000h', '596h', '0s', 'NaN', 'true', 'null', '~', 'x'.repeat(300), 'x'.repeat(70_000), '127.0.0.1:0', '[::1]:99999',
  'projects/p/secrets/s/versions/latest', 'CA-FILE', '4294967295', '4294967296:1', 'root', 'nobody', 'no-such-user', '65534:65534',
];
const ODD_NUMBERS = [0, -1, 1, 0.5, 1e-9, 256, 400, 0o777, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 1e300, -1e300];
const KEYS = ['log', 'attestation', 'credentials', 'secrets', 'fetch', 'output', 'run', 'psk', 'endpoints', 'credential', 'secret', 'Run', 'mode', 'file', 'path', 'with', 'env', 'x'];

function oddValue(r: Rng, depth = 0): Json {
  switch (r.int(depth > 2 ? 5 : 8)) {
    case 0: return r.pick(ODD_STRINGS);
    case 1: return r.pick(ODD_NUMBERS);
    case 2: return r.chance(0.5);
    case 3: return null;
    case 4: return r.pick(ODD_STRINGS).slice(0, 5);
    case 5: return Array.from({ length: r.int(3) }, () => oddValue(r, depth + 1));
    case 6: return Object.fromEntries(Array.from({ length: r.int(3) }, () => [r.pick(KEYS), oddValue(r, depth + 1)]));
    default: return deep(r.int(50));
  }
}

function deep(levels: number): Json {
  let v: Json = 'bottom';
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

/** Every path to a node of the tree (objects and arrays included). */
function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

function parentOf(root: Json, path: (string | number)[]): { parent: any; key: string | number } | undefined {
  if (path.length === 0) return undefined;
  let node: any = root;
  for (const p of path.slice(0, -1)) node = node[p];
  return { parent: node, key: path.at(-1)! };
}

const typo = (k: string, r: Rng) => {
  const i = r.int(k.length + 1);
  return r.pick([k.slice(0, i) + k.slice(i + 1), k.slice(0, i) + 'x' + k.slice(i), k.toUpperCase(), `${k}s`, k.replace(/s$/, '')]) || 'x';
};

/** One structural mutation, somewhere in the tree; `allowed` narrows where (boots). */
function mutate(config: Json, r: Rng, allowed: (path: (string | number)[]) => boolean = () => true): void {
  const candidates = paths(config).filter((p) => p.length > 0 && allowed(p));
  if (candidates.length === 0) return;
  const path = r.pick(candidates);
  const { parent, key } = parentOf(config, path)!;
  switch (r.int(6)) {
    case 0: parent[key] = oddValue(r); break;
    case 1: if (Array.isArray(parent)) parent.splice(key as number, 1); else delete parent[key]; break;
    case 2: if (!Array.isArray(parent)) { parent[typo(String(key), r)] = parent[key]; delete parent[key]; } break;
    case 3: if (!Array.isArray(parent)) parent[r.pick(KEYS)] = oddValue(r); else parent.push(oddValue(r)); break;
    case 4: parent[key] = r.pick(ODD_STRINGS); break;
    default: parent[key] = r.pick(ODD_NUMBERS); break;
  }
}

/** Text-level oddities only YAML has: anchors, tags, radix, special floats, duplicates, BOM. */
function yamlOddity(text: string, r: Rng): string {
  const lines = text.split('\n');
  const i = r.int(lines.length);
  const line = lines[i]!;
  const value = /^(\s*(?:- )?[^:#]+: )(.+)$/.exec(line);
  switch (r.int(9)) {
    case 0: if (value) lines[i] = `${value[1]}${r.pick(['!!str ', '!!int ', '!!binary ', '!foo ', '!!set ', '!!float ', '!!timestamp '])}${value[2]}`; break;
    case 1: if (value) lines[i] = `${value[1]}${r.pick(['0o400', '0o777', '0x100', '.nan', '.inf', '-.inf', '~', '0400', '1e400', '0b101', '"\\u0000"', "'\\x00'", '|-\n  multi\n  line'])}`; break;
    case 2: lines.splice(i, 0, line); break; // duplicate key
    case 3: return `\ufeff${text}`;
    case 4: return `base: &b { level: info }\n${text.replace(/^log:.*$/m, 'log: *b')}`;
    case 5: return text.slice(0, r.int(text.length));
    case 6: lines[i] = line.replace(/^ +/, (s) => '\t'.repeat(Math.ceil(s.length / 2))); break;
    case 7: return `${text}\n---\nsecond: document\n`;
    default: return `x: &a [1,1,1,1,1,1,1,1]\ny: &b [*a,*a,*a,*a,*a,*a,*a,*a]\nz: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n${text}`;
  }
  return lines.join('\n');
}

const ZOD_WORDS = /Invalid input|Invalid key in record|Invalid option|Too small|Too big|Unrecognized key|expected \w+, received|must match pattern/;
const STACK = /\n\s+at .+:\d+:\d+|TypeError|RangeError|ReferenceError|SyntaxError: (?!.*YAML)|internal error/;

function assertProblemLines(problems: string[], what: string) {
  assert.ok(problems.length > 0, what);
  for (const p of problems) {
    assert.doesNotMatch(p, /\n/, `${what}: one line per problem: ${p}`);
    assert.match(p, /^config (file )?\//, `${what}: names the config: ${p}`);
    assert.doesNotMatch(p, ZOD_WORDS, `${what}: in our words: ${p}`);
    assert.doesNotMatch(p, STACK, `${what}: ${p}`);
  }
}

describe(`config fuzzer (seed ${SEED}, ${COUNT} configs)`, () => {
  let dir: string;
  let bases: { name: string; config: Json; dir: string }[];
  let cases: { text: string; base: string }[];
  const r = rng(SEED);

  before(() => {
    console.log(`config fuzzer: seed ${SEED} (FUZZ_SEED=${SEED} reproduces this run)`);
    dir = mkdtempSync('/dev/shm/tee-init-fuzz-');
    const examples = join(root, 'examples');
    bases = readdirSync(examples).filter((d) => existsSync(join(examples, d, 'tee-init.yaml'))).map((d) => ({
      name: d,
      config: parseYaml(readFileSync(join(examples, d, 'tee-init.yaml'), 'utf8')) as Json,
      dir: join(examples, d),
    }));
    bases.push({ name: 'grammar', config: grammar(r, dir) as Json, dir });
    cases = Array.from({ length: COUNT }, (_, n) => {
      const base = n % 5 === 4 ? { name: 'grammar', config: grammar(r, dir) as Json, dir } : r.pick(bases);
      const config = structuredClone(base.config);
      for (let m = r.int(4); m > 0; m--) mutate(config, r);
      let text = r.chance(0.3) ? JSON.stringify(config) : stringify(config, { lineWidth: 0 });
      if (r.chance(0.3)) text = yamlOddity(text, r);
      return { text, base: base.name };
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('check, in-process: each config is valid, or refused with one line per problem (78), never a crash', async () => {
    let ok = 0;
    for (const [n, c] of cases.entries()) {
      const path = join(dir, `in-process-${n}.yaml`);
      writeFileSync(path, c.text);
      try {
        // Some with a COMMAND, as `check --config F -- COMMAND` (refused with a preset).
        await checkText(path, { show: true, command: n % 7 === 0 ? ['my-server', '--flag'] : [] });
        ok++;
      } catch (err) {
        if (!(err instanceof InitError) || err.exitCode !== 78) {
          assert.fail(`case ${n} (${c.base}, seed ${SEED}): not a config error: ${(err as Error)?.stack ?? err}\n--- config ---\n${c.text.slice(0, 2000)}`);
        }
        assertProblemLines(problemsOf(err), `case ${n} (${c.base}, seed ${SEED})`);
      }
    }
    console.log(`config fuzzer: ${ok} of ${cases.length} configs valid, ${cases.length - ok} refused`);
    assert.ok(ok > 0 && ok < cases.length, 'the generator makes both valid and invalid configs');
  });

  test('check, the real bundle: exit 0 or 78, each stderr line one problem, nothing else', async () => {
    const sample = cases.filter((_, n) => n % Math.floor(COUNT / BUNDLE_CHECKS) === 0).slice(0, BUNDLE_CHECKS);
    for (const [n, c] of sample.entries()) {
      const path = join(dir, `bundle-check-${n}.yaml`);
      writeFileSync(path, c.text);
      const { proc } = startInit(['check', '--config', path], { timeout: BOOT_TIMEOUT_MS });
      const result = await proc;
      const what = `bundle check ${n} (${c.base}, seed ${SEED})`;
      assert.ok(result.exitCode === 0 || result.exitCode === 78, `${what}: exit ${result.exitCode} ${result.signal ?? ''}\n${result.stderr}`);
      if (result.exitCode === 78) assertProblemLines((result.stderr as string).split('\n').map((l) => l.replace(/^tee-init check: /, '')), what);
      // Exit 0: nothing on stderr but warnings (a program that is not on this machine).
      else assert.deepEqual((result.stderr as string).split('\n').filter((l) => l !== '' && !l.startsWith('tee-init check: warning: ')), [], what);
    }
  });

  test('boot, the real bundle: 78 with one line and no child, or the child runs; no file outside the output dir', async () => {
    const secretsDir = join(dir, 'secrets');
    mkdirSync(secretsDir);
    for (const f of ['cert', 'key', 'share']) writeFileSync(join(secretsDir, f), `${f}-bytes-not-pem`);
    const counts: Record<string, number> = {};
    for (let n = 0; n < BUNDLE_BOOTS; n++) {
      const work = join(dir, `boot-${n}`);
      mkdirSync(work);
      const marker = join(work, 'child-ran');
      const config = bootConfig(secretsDir, work, marker) as Json;
      // Only what a boot can take without a network or a long wait: secrets, run, output.owner, log.
      const bootable = (p: (string | number)[]) => ['secrets', 'run', 'log'].includes(String(p[0])) || (p[0] === 'output' && p[1] === 'owner');
      for (let m = r.int(3); m > 0; m--) mutate(config, r, bootable);
      let text = r.chance(0.5) ? JSON.stringify(config) : stringify(config, { lineWidth: 0 });
      if (r.chance(0.2)) text = yamlOddity(text, r);
      const path = join(work, 'config.yaml');
      writeFileSync(path, text);
      const { proc, log } = startInit(['--config', path], { timeout: BOOT_TIMEOUT_MS });
      const result = await proc;
      const what = `boot ${n} (seed ${SEED})\n--- config ---\n${text.slice(0, 3000)}\n--- log ---\n${log.text.slice(0, 3000)}`;
      counts[String(result.exitCode)] = (counts[String(result.exitCode)] ?? 0) + 1;
      assert.equal(result.signal ?? undefined, undefined, `${what}: killed (a hang?)`);
      assert.notEqual(result.exitCode, 70, what);
      assert.doesNotMatch(log.text, STACK, what);
      const errors = log.records.filter((rec) => rec.severity === 'ERROR' || rec.severity === 'CRITICAL');
      if (result.exitCode === 78) {
        assert.equal(errors.length, 1, `${what}: one line`);
        assert.doesNotMatch(errors[0]!.message, ZOD_WORDS, what);
        assert.equal(existsSync(marker), false, `${what}: a refused config started its child`);
      }
      for (const rec of log.records) assert.equal(typeof rec.message, 'string', what);
      // Everything tee-init wrote is gone: the work dir holds the config and (maybe) the marker.
      assert.deepEqual(readdirSync(work).filter((f) => f !== 'config.yaml' && f !== 'child-ran'), [], what);
      assert.deepEqual(readdirSync(secretsDir).sort(), ['cert', 'key', 'share'], what);
    }
    console.log(`config fuzzer: boot exit statuses ${JSON.stringify(counts)}`);
  });
});

/** A config from the schema's grammar: a random choice of sections, each valid or nearly so. */
function grammar(r: Rng, dir: string): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  const sec = (name: string) => `s_${name}`;
  if (r.chance(0.5)) c.log = { level: r.pick(['trace', 'debug', 'info', 'warn', 'error']) };
  if (r.chance(0.5)) c.attestation = { tokenFile: join(dir, 'token'), waitFor: r.pick(['0s', '30s', 5, '1m30s']), require: r.chance(0.5) ? { swname: 'CONFIDENTIAL_SPACE' } : {} };
  const creds: Record<string, unknown> = {};
  if (r.chance(0.6)) creds.alice = { type: 'confidential-space', provider: 'projects/111/locations/global/workloadIdentityPools/alice-pool/providers/attestation', ...(r.chance(0.5) ? { serviceAccount: 'reader@p.iam.gserviceaccount.com' } : {}) };
  if (r.chance(0.3)) creds.dev = { type: 'adc' };
  if (Object.keys(creds).length) c.credentials = creds;
  const secrets: Record<string, unknown> = {};
  for (let i = r.int(5); i > 0; i--) {
    const name = sec(String(i));
    secrets[name] = r.chance(0.5) && creds.alice
      ? { source: 'gcp', ref: `projects/p/secrets/${name}/versions/${r.pick(['latest', '1', '42'])}`, credentials: 'alice', ...(r.chance(0.6) ? { file: `${name}.pem` } : {}) }
      : { source: 'file', path: `./${name}`, ...(r.chance(0.6) ? { file: `${name}.bin`, mode: r.pick(['0400', '0440', 400, '0o600']) } : {}) };
  }
  if (Object.keys(secrets).length) c.secrets = secrets;
  if (r.chance(0.4)) c.fetch = { deadline: r.pick(['60s', '1s', 90]), attemptTimeout: r.pick(['15s', '500ms']), concurrency: r.pick([1, 16, 256]) };
  c.output = { dir: join(dir, 'out'), ...(r.chance(0.3) ? { owner: r.pick(['root', '0:0', 'nobody', '65534']) } : {}) };
  const withFiles = Object.entries(secrets).filter(([, s]) => (s as { file?: string }).file).map(([n]) => n);
  c.run = r.chance(0.2)
    ? { preset: 'redis', with: { tlsPort: r.pick([6379, 16379, 0]) } }
    : {
        command: ['server', ...withFiles.map((n) => `{{secrets.${n}.path}}`)],
        ...(r.chance(0.5) ? { env: { OUT: '{{output.dir}}', PORT: r.pick(['8080', 8080]) } } : {}),
        ...(r.chance(0.4) ? { files: [{ name: 'app.conf', template: r.chance(0.5) ? 'dir={{output.dir}}\n' : { dir: '{{output.dir}}', n: 1 }, format: r.pick(['text', 'json', 'yaml']) }] } : {}),
        ...(r.chance(0.3) ? { user: r.pick(['nobody', '65534', 'root:root']) } : {}),
        ...(r.chance(0.5) ? { gracePeriod: r.pick(['10s', 0, '596h']) } : {}),
      };
  const shares = Object.keys(secrets).filter((n) => !(secrets[n] as { file?: string }).file);
  if (shares.length && r.chance(0.5)) {
    c.psk = {
      mode: r.pick(['server', 'client']),
      listen: r.pick(['0.0.0.0:8081', '127.0.0.1:0', '[::1]:8443']),
      connect: r.pick(['127.0.0.1:6379', 'redis:6379']),
      identities: { Client1: { shares, combine: 'sha256-concat' } },
      ...(r.chance(0.5) ? { handshakeTimeout: r.pick(['10s', '1ms']), idleTimeout: r.pick(['0s', '12h']) } : {}),
    };
  }
  return c;
}

/** A config that boots without a network: file secrets, no attestation, a child that leaves a marker. */
function bootConfig(secretsDir: string, work: string, marker: string): Record<string, unknown> {
  return {
    log: { level: 'info' },
    attestation: { tokenFile: join(work, 'no-token'), waitFor: '0s' },
    secrets: {
      cert: { source: 'file', path: join(secretsDir, 'cert'), file: 'server.crt' },
      key: { source: 'file', path: join(secretsDir, 'key'), file: 'server.key', mode: '0400' },
      share: { source: 'file', path: join(secretsDir, 'share') },
    },
    fetch: { deadline: '2s', attemptTimeout: '1s' },
    output: { dir: join(work, 'out') },
    run: {
      command: ['sh', '-c', `touch ${marker}`, '{{secrets.cert.path}}'],
      env: { KEY_FILE: '{{secrets.key.path}}' },
      files: [{ name: 'app.json', template: { cert: '{{secrets.cert.path}}' }, format: 'json' }],
      gracePeriod: '1s',
    },
  };
}
