// The check-vs-boot property: `tee-init check` and a boot of the same config agree.
// For a few hundred generated configs (valid bases, each with one to three plausible mistakes),
// run through the real bundle:
//  - check exits 78 exactly when the boot exits 78 before its first network call (and before
//    its program starts), and check's first problem line is the boot's error message (without
//    the boot's "(and N more: ...)");
//  - a config check accepts gets the boot as far as its first network call (the trap below) or,
//    with no network needed, to its program's start;
//  - a boot that exits 78 leaves nothing on disk and started no program.
// The network is a trap (test/helpers/net-trap.ts): every endpoint points at a loopback port or
// socket that records the connection and never answers; the first connection ends the boot
// (SIGTERM), as does its program's start.
// PROP_SEED=N reproduces a run, PROP_COUNT=N resizes it, PROP_ONLY=I runs case I alone
// (each case has its own generator, derived from the seed and its index); PROP_MATRIX=1 runs
// each mistake alone on each base instead (about 250 cases: the plain list of classes).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { confidentialSpaceClaims, createAttestationKey, writeTokenFile } from '../fakes/attestation.ts';
import { startInit, type LogRecord } from '../helpers/init.ts';
import { mulberry32 } from '../helpers/mulberry32.ts';
import { createPki } from '../helpers/pki.ts';
import { startNetTrap } from '../helpers/net-trap.ts';
import { freePort } from '../helpers/net.ts';

const SEED = Number(process.env.PROP_SEED ?? 0xc4ec);
const COUNT = Number(process.env.PROP_COUNT ?? 200);
const ONLY = process.env.PROP_ONLY === undefined ? undefined : Number(process.env.PROP_ONLY);
const MATRIX = process.env.PROP_MATRIX === '1';
const PARALLEL = 2;
/** A boot that neither refuses, nor calls out, nor starts its program within this is a hang. */
const BOOT_LIMIT_MS = 45_000;

const SHARE_A = '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90';
const SHARE_B = 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2';

/** Seeded: one generator per case, so a case reproduces alone (PROP_ONLY). */
function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]!, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof rng>;
/** Configs are edited as plain data: a mistake is, by design, not what the schema's types allow. */
type Config = Record<string, any>;

/** What one case owns: its directory, ports, the command line and what it put on disk itself. */
interface Ctx {
  shared: string;
  disk: string;
  dir: string;
  out: string;
  marker: string;
  ports: number[];
  heldPort: number;
  trapUrl: string;
  trapSocket: string;
  cli: string[];
  /** Files the test itself put in the output dir (it must hold exactly these after a refusal). */
  preexisting?: { dir: string; files: string[] };
}

type Shape = 'run' | 'redis' | 'processes' | 'postgres' | 'psk' | 'tls' | 'metadata';
interface Base {
  name: string;
  network: boolean;
  shape: Shape;
  health: boolean;
}

const SHAPES_NET: Shape[] = ['run', 'redis', 'postgres', 'psk', 'tls', 'metadata'];
const SHAPES_FILE: Shape[] = ['run', 'processes', 'psk', 'tls'];
const BASES: Base[] = [
  ...SHAPES_NET.flatMap((shape) => [false, true].map((health) => ({ name: `gcp-${shape}${health ? '+health' : ''}`, network: true, shape, health }))),
  ...SHAPES_FILE.flatMap((shape) => [false, true].map((health) => ({ name: `file-${shape}${health ? '+health' : ''}`, network: false, shape, health }))),
];

/** A valid config of the base; with `network`, reading its secrets starts with the token and STS. */
function baseConfig(b: Base, x: Ctx): Config {
  const program = ['sh', '-c', `touch ${x.marker}; exec sleep 60`];
  const c: Config = { log: { level: 'info' } };
  if (b.network) {
    c.attestation = { tokenFile: join(x.shared, 'token'), waitFor: '2s', require: { swname: 'CONFIDENTIAL_SPACE' } };
    c.credentials = {
      alice: { type: 'confidential-space', provider: 'projects/111/locations/global/workloadIdentityPools/alice-pool/providers/attestation', serviceAccount: 'tee-reader@alice-proj.iam.gserviceaccount.com' },
      bob: { type: 'confidential-space', provider: 'projects/222/locations/global/workloadIdentityPools/bob-pool/providers/attestation' },
    };
    c.secrets = {
      ca: { source: 'gcp', ref: 'projects/bob-proj/secrets/ca/versions/latest', credentials: 'bob', file: 'ca.pem' },
      cert: { source: 'gcp', ref: 'projects/alice-proj/secrets/server-cert/versions/2', credentials: 'alice', file: 'server.crt' },
      key: { source: 'gcp', ref: 'projects/alice-proj/secrets/server-key/versions/latest', credentials: 'alice', file: 'server.key', mode: '0400' },
      share_a: { source: 'gcp', ref: 'projects/alice-proj/secrets/alice_psk/versions/latest', credentials: 'alice' },
      share_b: { source: 'gcp', ref: 'projects/bob-proj/secrets/bob_psk/versions/1', credentials: 'bob' },
    };
    c.fetch = { deadline: '30s', attemptTimeout: '20s' };
  } else {
    c.secrets = {
      ca: { source: 'file', path: join(x.shared, 'pki', 'ca.crt'), file: 'ca.pem' },
      cert: { source: 'file', path: join(x.shared, 'pki', 'server.crt'), file: 'server.crt' },
      key: { source: 'file', path: join(x.shared, 'pki', 'server.key'), file: 'server.key', mode: '0400' },
      share_a: { source: 'file', path: join(x.shared, 'share_a') },
      share_b: { source: 'file', path: join(x.shared, 'share_b') },
    };
  }
  c.output = { dir: x.out };
  const [p0, p1, p2] = x.ports as [number, number, number];
  switch (b.shape) {
    case 'redis':
      c.run = { preset: 'redis', with: { tlsPort: p0 }, gracePeriod: '2s' };
      break;
    case 'postgres':
      c.processes = {
        initdb: { command: ['sh', '-c', `touch ${x.marker}`], user: 'postgres', oneshot: true },
        db: { preset: 'postgres', with: { port: p0 }, user: 'postgres', after: ['initdb'] },
      };
      break;
    case 'processes':
      c.processes = {
        first: { command: program, env: { CA: '{{secrets.ca.path}}' } },
        second: { command: ['sleep', '60'], after: ['first'] },
      };
      break;
    default:
      c.run = { command: [...program, '{{secrets.cert.path}}'], env: { CA: '{{secrets.ca.path}}' }, gracePeriod: '2s' };
  }
  if (b.shape === 'psk') {
    c.psk = { mode: 'server', listen: `127.0.0.1:${p1}`, connect: `127.0.0.1:${p2}`, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'hkdf-sha256', salt: 'prop v1', info: 'test' } } };
  }
  if (b.shape === 'tls') {
    c.listeners = { front: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${p1}`, connect: `127.0.0.1:${p2}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } } };
  }
  if (b.shape === 'metadata') c.listeners = { md: { type: 'metadata', listen: `127.0.0.1:${p1}`, credentials: 'alice' } };
  if (b.health) c.health = { listen: `127.0.0.1:${x.ports[3]}` };
  // Every endpoint is the trap, whether or not the base needs one: a stray call is caught too.
  c.endpoints = { sts: `${x.trapUrl}/v1/token`, iamcredentials: x.trapUrl, secretmanager: x.trapUrl, teeserver: x.trapSocket };
  return c;
}

/** Enough of a context to ask a base which mistakes apply to it. */
const PROBE: Ctx = { shared: '/x', disk: '/x', dir: '/x', out: '/x/out', marker: '/x/m', ports: [1, 2, 3, 4], heldPort: 5, trapUrl: 'http://127.0.0.1:6', trapSocket: '/x/s', cli: [] };

// --- the mistakes: each a small edit of a config; `applies` says whether it makes sense there.

interface Mutation {
  name: string;
  applies(c: Config): boolean;
  /** Edits the config (and the case's command line or disk); returns what it did, briefly. */
  apply(c: Config, x: Ctx, r: Rng): string;
}

/** Every argv of the config: run.command, each process's command. */
const commands = (c: Config): string[][] => [
  ...(Array.isArray(c.run?.command) ? [c.run.command] : []),
  ...Object.values<Config>(c.processes ?? {}).flatMap((p) => (Array.isArray(p.command) ? [p.command] : [])),
];
/** Where a program is described: `run`, or each process (field name, object). */
const units = (c: Config): [string, Config][] => (c.processes ? Object.entries<Config>(c.processes).map(([n, p]) => [`processes.${n}`, p]) : c.run ? [['run', c.run]] : []);
const presetUnits = (c: Config) => units(c).filter(([, u]) => u.preset && u.preset !== 'none');
const secretsWhere = (c: Config, f: (s: Config) => boolean) => Object.keys(c.secrets ?? {}).filter((n) => f(c.secrets[n]));
const pskIdentity = (c: Config): Config | undefined => (c.psk ? Object.values<Config>(c.psk.identities)[0] : undefined);
const listenerObjects = (c: Config): Config[] => [...(c.psk ? [c.psk] : []), ...Object.values<Config>(c.listeners ?? {})];

function makeDir(dir: string, files: string[], x: Ctx): void {
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f), 'left by the test\n');
  x.preexisting = { dir, files };
}

const MUTATIONS: Mutation[] = [
  {
    name: 'unknown-placeholder',
    applies: (c) => commands(c).length > 0,
    apply: (c, _x, r) => (r.pick(commands(c)).push('{{secrets.nope.path}}'), 'a command gets {{secrets.nope.path}}'),
  },
  {
    name: 'path-of-memory-secret',
    applies: (c) => commands(c).length > 0 && secretsWhere(c, (s) => !s.file).length > 0,
    apply: (c, _x, r) => {
      const n = r.pick(secretsWhere(c, (s) => !s.file));
      r.pick(commands(c)).push(`{{secrets.${n}.path}}`);
      return `a command gets {{secrets.${n}.path}} (no file:)`;
    },
  },
  {
    name: 'unknown-preset-param',
    applies: (c) => presetUnits(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(presetUnits(c));
      u.with = { ...u.with, nope: 1 };
      return `${f}.with.nope: 1`;
    },
  },
  {
    name: 'bad-preset-port',
    applies: (c) => presetUnits(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(presetUnits(c));
      const key = u.preset === 'redis' ? 'tlsPort' : 'port';
      u.with = { ...u.with, [key]: r.pick([70000, -1, 'https', 1.5, 65536]) };
      return `${f}.with.${key}: ${JSON.stringify(u.with[key])}`;
    },
  },
  {
    name: 'command-beside-preset',
    applies: (c) => presetUnits(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(presetUnits(c));
      u.command = ['my-server', '--flag'];
      return `${f}.command beside preset ${u.preset}`;
    },
  },
  {
    name: 'preset-missing-secret',
    applies: (c) => presetUnits(c).length > 0 && ['ca', 'cert', 'key'].some((n) => c.secrets?.[n]),
    apply: (c, _x, r) => {
      const n = r.pick(['ca', 'cert', 'key'].filter((s) => c.secrets[s]));
      delete c.secrets[n];
      return `secrets.${n} removed (the preset needs it)`;
    },
  },
  {
    name: 'cli-command-with-preset',
    applies: (c) => presetUnits(c).length > 0 || !!c.processes,
    apply: (_c, x) => ((x.cli = ['my-server', '--flag']), 'COMMAND my-server --flag on the command line'),
  },
  {
    name: 'output-dir-not-empty',
    applies: () => true,
    apply: (c, x) => (makeDir(c.output.dir, ['stale.txt'], x), 'output.dir exists with stale.txt in it'),
  },
  {
    name: 'output-dir-not-tmpfs',
    applies: () => true,
    apply: (c, x, r) => {
      const dir = join(x.disk, `${x.dir.split('/').pop()}-out`);
      c.output.dir = dir;
      if (r.chance(0.5)) return (makeDir(dir, [], x), `output.dir ${dir} exists, empty, on ext4`);
      return `output.dir ${dir} (not there yet) on ext4`;
    },
  },
  {
    name: 'output-dir-socket-too-long',
    applies: (c) => presetUnits(c).length > 0,
    apply: (c, x) => ((c.output.dir = join(x.dir, 'o'.repeat(120))), 'output.dir 120+ bytes: the preset socket path is too long'),
  },
  {
    name: 'unknown-owner',
    applies: () => true,
    apply: (c) => ((c.output.owner = 'no-such-user-prop'), 'output.owner: no-such-user-prop'),
  },
  {
    name: 'health-port-in-use',
    applies: () => true,
    apply: (c, x) => ((c.health = { listen: `127.0.0.1:${x.heldPort}` }), 'health.listen on a port in use'),
  },
  {
    name: 'health-not-loopback',
    applies: () => true,
    apply: (c, x) => ((c.health = { listen: `0.0.0.0:${x.ports[3]}` }), 'health.listen on 0.0.0.0'),
  },
  {
    name: 'listener-port-in-use',
    applies: (c) => listenerObjects(c).length > 0,
    apply: (c, x, r) => ((r.pick(listenerObjects(c)).listen = `127.0.0.1:${x.heldPort}`), 'a listener listen: on a port in use'),
  },
  {
    name: 'listeners-same-port',
    applies: (c) => listenerObjects(c).length > 0 && !!c.health,
    apply: (c, _x, r) => ((r.pick(listenerObjects(c)).listen = c.health.listen), 'a listener on the health port'),
  },
  {
    name: 'psk-one-share',
    applies: (c) => !!pskIdentity(c),
    apply: (c) => {
      const id = pskIdentity(c)!;
      id.shares = id.shares.slice(0, 1);
      return `psk identity with one share (${id.combine})`;
    },
  },
  {
    name: 'psk-shamir-threshold-too-high',
    applies: (c) => !!pskIdentity(c),
    apply: (c) => (Object.assign(pskIdentity(c)!, { combine: 'shamir', threshold: 3 }), 'combine: shamir, threshold 3 of 2 shares'),
  },
  {
    name: 'listener-unknown-secret',
    applies: (c) => !!pskIdentity(c) || !!c.listeners?.front,
    apply: (c) => {
      if (pskIdentity(c)) return (pskIdentity(c)!.shares.push('nope'), 'psk shares list an unconfigured secret nope');
      c.listeners.front.tls.ca = 'nope';
      return 'listeners.front.tls.ca: nope (not configured)';
    },
  },
  {
    name: 'listener-missing-secret',
    applies: (c) => !!pskIdentity(c) || !!c.listeners?.front,
    apply: (c) => {
      const n = c.psk ? pskIdentity(c)!.shares[0] : c.listeners.front.tls.key;
      delete c.secrets[n];
      return `secrets.${n} removed (a listener uses it)`;
    },
  },
  {
    name: 'env-listener-port-0',
    applies: () => true,
    apply: (c, _x, r) => {
      // metadata needs a credential (and so the network); http-proxy without tokens does not.
      const md = c.credentials?.alice && r.chance(0.5);
      c.listeners = {
        ...c.listeners,
        env0: md
          ? { type: 'metadata', listen: '127.0.0.1:0', credentials: 'alice', env: true }
          : { type: 'http-proxy', listen: '127.0.0.1:0', env: true, routes: [{ hosts: ['example.com'] }] },
      };
      return `listeners.env0: ${md ? 'metadata' : 'http-proxy'}, env: true, listen 127.0.0.1:0`;
    },
  },
  {
    name: 'metadata-unknown-credential',
    applies: (c) => !!c.listeners?.md,
    apply: (c) => ((c.listeners.md.credentials = 'carol'), 'listeners.md.credentials: carol (not configured)'),
  },
  {
    name: 'postgres-no-user',
    applies: (c) => c.processes?.db?.preset === 'postgres',
    apply: (c, _x, r) => {
      const n = r.pick(['db', 'initdb']);
      delete c.processes[n].user;
      return `processes.${n} without user:`;
    },
  },
  {
    name: 'unknown-user',
    applies: (c) => units(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(units(c));
      u.user = 'no-such-user-prop';
      return `${f}.user: no-such-user-prop`;
    },
  },
  {
    name: 'duplicate-file-name',
    applies: (c) => secretsWhere(c, (s) => !!s.file).length > 1,
    apply: (c, _x, r) => {
      const [a, b] = secretsWhere(c, (s) => !!s.file);
      if (r.chance(0.5) || !c.run) return ((c.secrets[b!].file = c.secrets[a!].file), `secrets.${b}.file = secrets.${a}.file`);
      c.run.files = [{ name: c.secrets[a!].file, template: 'x={{output.dir}}\n' }];
      return `run.files name = secrets.${a}.file`;
    },
  },
  {
    name: 'bad-mode',
    applies: (c) => secretsWhere(c, (s) => !!s.file).length > 0,
    apply: (c, _x, r) => {
      const n = r.pick(secretsWhere(c, (s) => !!s.file));
      c.secrets[n].mode = r.pick(['0999', 'rw', '07777', 9999]);
      return `secrets.${n}.mode: ${JSON.stringify(c.secrets[n].mode)}`;
    },
  },
  {
    name: 'secret-file-not-a-name',
    applies: (c) => secretsWhere(c, (s) => !!s.file).length > 0,
    apply: (c, _x, r) => {
      const n = r.pick(secretsWhere(c, (s) => !!s.file));
      c.secrets[n].file = r.pick(['../escape.pem', 'sub/x.pem', '..data', '.']);
      return `secrets.${n}.file: ${c.secrets[n].file}`;
    },
  },
  {
    name: 'unknown-credential',
    applies: (c) => secretsWhere(c, (s) => s.source === 'gcp').length > 0,
    apply: (c, _x, r) => {
      const n = r.pick(secretsWhere(c, (s) => s.source === 'gcp'));
      c.secrets[n].credentials = 'carol';
      return `secrets.${n}.credentials: carol`;
    },
  },
  {
    name: 'missing-file-secret',
    applies: () => true,
    apply: (c, x, r) => {
      const files = secretsWhere(c, (s) => s.source === 'file');
      const n = files.length ? r.pick(files) : 'extra';
      c.secrets[n] = { ...(c.secrets[n] ?? { source: 'file', file: 'extra.bin' }), path: join(x.shared, 'no-such-file') };
      return `secrets.${n}: source file, the file is missing`;
    },
  },
  {
    name: 'file-secret-is-a-directory',
    applies: () => true,
    apply: (c, x) => ((c.secrets.dirsecret = { source: 'file', path: x.shared, file: 'dir.bin' }), 'secrets.dirsecret: source file, a directory'),
  },
  {
    name: 'after-cycle',
    applies: (c) => !!c.processes,
    apply: (c) => {
      const [a, b] = Object.keys(c.processes) as [string, string];
      c.processes[a].after = [b];
      c.processes[b].after = [a];
      return `processes ${a} and ${b} after each other`;
    },
  },
  {
    name: 'after-unknown',
    applies: (c) => !!c.processes,
    apply: (c) => ((Object.values<Config>(c.processes)[0]!.after = ['nope']), 'a process after: [nope]'),
  },
  {
    name: 'env-bad-name',
    applies: (c) => units(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(units(c));
      u.env = { ...u.env, 'CA-FILE': '{{secrets.ca.path}}' };
      return `${f}.env.CA-FILE`;
    },
  },
  {
    name: 'working-dir-missing',
    applies: (c) => units(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(units(c));
      u.workingDir = '/no/such/dir-prop';
      return `${f}.workingDir: /no/such/dir-prop`;
    },
  },
  {
    name: 'plain-http-endpoint',
    applies: () => true,
    apply: (c) => ((c.endpoints.sts = 'http://sts.example.com/v1/token'), 'endpoints.sts: plain http, not loopback'),
  },
  {
    name: 'bad-duration',
    applies: (c) => !!c.fetch || !!c.run,
    apply: (c) => {
      if (c.fetch) return ((c.fetch.deadline = '10 s'), 'fetch.deadline: "10 s"');
      return ((c.run.gracePeriod = '1000h'), 'run.gracePeriod: 1000h');
    },
  },
  {
    name: 'unknown-placeholder-in-file',
    applies: (c) => units(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(units(c));
      u.files = [...(u.files ?? []), { name: 'app.conf', template: 'ca={{secrets.nope.path}}\n' }];
      return `${f}.files: a template with {{secrets.nope.path}}`;
    },
  },
  {
    name: 'unknown-with-in-env',
    applies: (c) => units(c).length > 0,
    apply: (c, _x, r) => {
      const [f, u] = r.pick(units(c));
      u.env = { ...u.env, PORT: '{{with.nope}}' };
      return `${f}.env.PORT: {{with.nope}}`;
    },
  },
  {
    name: 'psk-twice',
    applies: (c) => !!c.psk,
    apply: (c) => ((c.listeners = { ...c.listeners, psk: { type: 'psk', ...c.psk } }), 'psk: and listeners.psk both'),
  },
  {
    name: 'client-listener-not-loopback',
    applies: (c) => !!c.psk || !!c.listeners?.md,
    apply: (c, x) => {
      if (c.psk) return ((c.psk.mode = 'client'), (c.psk.listen = `0.0.0.0:${x.ports[1]}`), 'psk mode client on 0.0.0.0');
      return ((c.listeners.md.listen = `0.0.0.0:${x.ports[1]}`), 'listeners.md (metadata) on 0.0.0.0');
    },
  },
  {
    name: 'processes-several-users',
    applies: (c) => !!c.processes && !c.output.owner,
    apply: (c) => {
      const [a, b] = Object.keys(c.processes) as [string, string];
      c.processes[a].user = 'nobody';
      c.processes[b].user = 'redis';
      return `processes.${a} as nobody, ${b} as redis, no output.owner`;
    },
  },
  {
    name: 'bad-ready-check',
    applies: (c) => !!c.processes,
    apply: (c) => ((Object.values<Config>(c.processes).at(-1)!.ready = { tcp: 'localhost' }), 'a process ready: { tcp: localhost } (no port)'),
  },
  {
    name: 'secret-ref-without-version',
    applies: (c) => secretsWhere(c, (s) => s.source === 'gcp').length > 0,
    apply: (c, _x, r) => {
      const n = r.pick(secretsWhere(c, (s) => s.source === 'gcp'));
      c.secrets[n].ref = c.secrets[n].ref.replace(/\/versions\/.*$/, '');
      return `secrets.${n}.ref without /versions/`;
    },
  },
];

interface Verdict {
  check: { code: number | undefined; first: string | undefined };
  boot: { code: number | undefined; signal: string | undefined; message: string | undefined; touched: boolean; started: boolean; leftovers: string[] };
}

interface Case {
  index: number;
  base: Base;
  mutations: string[];
  what: string[];
  cli: string[];
  /** Long directories and the short names the report shows for them. */
  paths: [string, string][];
  ms: number;
  verdict: Verdict;
}

const started = (r: LogRecord) => typeof r.pid === 'number' && /(^| )started$/.test(r.message);
const stripMore = (m: string | undefined) => m?.replace(/ \(and \d+ more: run tee-init check --config .*\)$/, '');

describe(`check vs boot (seed ${SEED}, ${COUNT} configs)`, () => {
  let shared: string;
  let disk: string;
  let held: Server;
  let heldPort: number;

  before(async () => {
    console.log(`check-vs-boot: seed ${SEED} (PROP_SEED=${SEED} PROP_COUNT=${COUNT} reproduces this run; PROP_ONLY=I one case)`);
    shared = mkdtempSync('/dev/shm/tee-init-prop-');
    // On a disk, not tmpfs: the output.dir mistakes that need one.
    disk = mkdtempSync('/var/tmp/tee-init-prop-');
    const key = await createAttestationKey();
    writeTokenFile(join(shared, 'token'), await key.sign(confidentialSpaceClaims(), { expiresInSeconds: 3 * 3600 }));
    createPki(join(shared, 'pki'));
    writeFileSync(join(shared, 'share_a'), `${SHARE_A}\n`);
    writeFileSync(join(shared, 'share_b'), `${SHARE_B}\n`);
    held = createServer();
    held.listen(0, '127.0.0.1');
    await once(held, 'listening');
    heldPort = (held.address() as AddressInfo).port;
  });
  after(async () => {
    held?.close();
    rmSync(shared, { recursive: true, force: true });
    rmSync(disk, { recursive: true, force: true });
  });

  // Generous limits: a few hundred real processes on a loaded 2-core machine.
  test('every base config is valid: check accepts it, its boot calls out (gcp) or starts its program (file)', { timeout: 300_000 }, async () => {
    const results = await pool(BASES.map((base, i) => () => runCase(-1 - i, base)), PARALLEL);
    const bad = results.filter((c) => c.verdict.check.code !== 0 || !(c.verdict.boot.touched || c.verdict.boot.started) || c.verdict.boot.touched !== c.base.network);
    assert.deepEqual(bad.map(describeCase), [], 'the bases themselves');
  });

  test('check exits 78 exactly when the boot does before its first network call, with the same first line', { timeout: 600_000 }, async () => {
    const indices = ONLY === undefined ? Array.from({ length: COUNT }, (_, i) => i) : [ONLY];
    const caseRng = (i: number) => rng((SEED ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    // PROP_MATRIX=1: each mistake alone on each base it applies to (no health variants), in place of the random draw.
    const jobs = MATRIX
      ? MUTATIONS.flatMap((mu) => BASES.filter((b) => !b.health).map((b) => ({ mu, b })))
          .filter(({ mu, b }) => mu.applies(baseConfig(b, PROBE)))
          .map(({ mu, b }, i) => () => runCase(i, b, caseRng(i), mu.name))
      : indices.map((i) => () => {
          const r = caseRng(i);
          return runCase(i, r.pick(BASES), r);
        });
    const cases = await pool(jobs, PARALLEL);
    const failing = cases.filter((c) => problemsOf(c).length > 0);
    // The classes first (a single mistake names its cause; several may only show an order), then each case.
    const classes = new Map<string, number>();
    for (const c of failing) {
      for (const p of problemsOf(c)) {
        const key = `${p.replace(/ left: .*/, ' left files')} <- ${c.mutations.length === 1 ? c.mutations[0] : 'several mistakes'}`;
        classes.set(key, (classes.get(key) ?? 0) + 1);
      }
    }
    // How each single mistake fared (agreements included): what the lead reads to see which are caught where.
    const tally = new Map<string, number>();
    for (const c of cases.filter((k) => k.mutations.length === 1)) {
      const { check, boot } = c.verdict;
      const key = `${c.mutations[0]} [${c.base.network ? 'gcp' : 'file'}]: check ${check.code}, boot ${[boot.code ?? boot.signal, boot.touched ? 'network' : '', boot.started ? 'program' : ''].filter(Boolean).join(' ')}`;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    console.log(`check-vs-boot: single mistakes:\n${[...tally].sort().map(([k, n]) => `  ${k} (${n})`).join('\n')}`);
    const slow = [...cases].sort((a, b) => b.ms - a.ms).slice(0, 3);
    console.log(`check-vs-boot: slowest cases ${slow.map((c) => `#${c.index} ${c.ms} ms`).join(', ')}`);
    console.log(`check-vs-boot: ${cases.length} configs, ${cases.filter((c) => c.verdict.check.code === 78).length} refused by check, ${failing.length} disagree`);
    if (failing.length) {
      assert.fail(
        [
          `${failing.length} of ${cases.length} configs disagree (PROP_SEED=${SEED}; PROP_ONLY=I reruns case #I)`,
          ...[...classes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `  ${String(n).padStart(3)} x ${k}`),
          ...failing.map((c) => `${problemsOf(c).join('; ')}\n  ${describeCase(c)}`),
        ].join('\n'),
      );
    }
  });

  /** One config: generate, check, boot, compare. `r` absent: the base alone. */
  async function runCase(index: number, base: Base, r?: Rng, only?: string): Promise<Case> {
    const t0 = performance.now();
    const dir = mkdtempSync(join(shared, `case-${index}-`));
    const trap = await startNetTrap(join(dir, 'trap.sock'));
    const x: Ctx = {
      shared,
      disk,
      dir,
      out: join(dir, 'out'),
      marker: join(dir, 'program-started'),
      ports: [await freePort(), await freePort(), await freePort(), await freePort()],
      heldPort,
      trapUrl: trap.url,
      trapSocket: trap.socketPath,
      cli: [],
    };
    try {
      const config = baseConfig(base, x);
      const done: string[] = [];
      const what: string[] = [];
      if (r) {
        // Half the cases one mistake (its class is then plain), the rest two or three (their order).
        for (let m = r.pick([1, 1, 1, 1, 1, 2, 2, 2, 3, 3]); m > 0; m--) {
          const options = MUTATIONS.filter((mu) => !done.includes(mu.name) && mu.applies(config) && (!only || mu.name === only));
          if (!options.length) break;
          const mu = r.pick(options);
          done.push(mu.name);
          what.push(mu.apply(config, x, r));
        }
      }
      const path = join(dir, 'config.yaml');
      writeFileSync(path, stringify(config, { lineWidth: 0 }));
      const cli = x.cli.length ? ['--', ...x.cli] : [];

      const check = startInit(['check', '--config', path, ...cli], { timeout: BOOT_LIMIT_MS });
      const checked = await check.proc;
      const firstProblem = (checked.stderr as string)
        .split('\n')
        .find((l) => l.startsWith('tee-init check: ') && !l.startsWith('tee-init check: warning: '))
        ?.slice('tee-init check: '.length);

      const boot = startInit(['--config', path, ...cli], { timeout: BOOT_LIMIT_MS });
      let touched = false;
      let sawStart = false;
      // Whichever comes first ends the boot: a network call, the program's start, its own exit.
      void trap.touched.then(() => {
        touched = true;
        boot.proc.kill('SIGTERM');
      });
      // The tail parses each chunk first (it subscribed first); then look for a start.
      boot.proc.stderr?.on('data', () => {
        if (!sawStart && boot.log.records.some(started)) {
          sawStart = true;
          boot.proc.kill('SIGTERM');
        }
      });
      const booted = await boot.proc;
      touched ||= trap.connections.length > 0;
      sawStart ||= existsSync(x.marker) || boot.log.records.some(started);
      const error = boot.log.records.find((rec) => rec.exitCode !== undefined && (rec.severity === 'ERROR' || rec.severity === 'CRITICAL'));
      return {
        index,
        base,
        mutations: done,
        what,
        cli: x.cli,
        paths: [[dir, 'CASE'], [disk, 'DISK'], [shared, 'TMP']],
        ms: Math.round(performance.now() - t0),
        verdict: {
          check: { code: checked.exitCode, first: firstProblem },
          boot: { code: booted.exitCode, signal: booted.signal ?? undefined, message: error?.message, touched, started: sawStart, leftovers: leftovers(config.output.dir, x) },
        },
      };
    } finally {
      await trap.close();
      rmSync(dir, { recursive: true, force: true });
      if (x.preexisting) rmSync(x.preexisting.dir, { recursive: true, force: true });
    }
  }
});

/** What the boot left in its output dir beyond what the test put there itself. */
function leftovers(outDir: string, x: Ctx): string[] {
  if (!existsSync(outDir)) return x.preexisting?.dir === outDir ? ['(the existing output dir was removed)'] : [];
  if (x.preexisting?.dir !== outDir) return [`${outDir}/ created`];
  const extra = readdirSync(outDir).filter((f) => !x.preexisting!.files.includes(f));
  const gone = x.preexisting.files.filter((f) => !existsSync(join(outDir, f)));
  return [...extra.map((f) => `${f} written`), ...gone.map((f) => `${f} removed`)];
}

/** Each way the case breaks the property, one short line each. */
function problemsOf(c: Case): string[] {
  const { check, boot } = c.verdict;
  const progressed = boot.touched || boot.started;
  const bootRefused = boot.code === 78 && !progressed;
  const out: string[] = [];
  if (check.code !== 0 && check.code !== 78) out.push(`check exited ${check.code}`);
  else if (check.code === 78 && !bootRefused) out.push(progressed ? `check refuses, boot ${boot.touched ? 'called the network' : 'started the program'}` : `check refuses, boot exited ${boot.code ?? boot.signal}`);
  else if (check.code === 0 && bootRefused) out.push('check accepts, boot refuses (78)');
  else if (check.code === 0 && !progressed) out.push(`check accepts, boot exited ${boot.code ?? boot.signal} before any network call or program`);
  else if (check.code === 78 && check.first !== stripMore(boot.message)) {
    const prefixOnly = check.first?.replace(/^config [^:]+: /, '') === stripMore(boot.message)?.replace(/^config [^:]+: /, '');
    out.push(`both refuse, first lines differ${prefixOnly ? ' (only the "config FILE: " prefix)' : ''}`);
  }
  if (boot.code === 78 && boot.started) out.push('boot exited 78 after starting a program');
  // Every exit wipes what the boot wrote (a refusal, and the SIGTERM that ends a passing boot).
  if (boot.leftovers.length) out.push(`boot exited ${boot.code ?? boot.signal} and left: ${boot.leftovers.join(', ')}`);
  return out;
}

function describeCase(c: Case): string {
  const { check, boot } = c.verdict;
  const bootState = [boot.code ?? boot.signal, boot.touched ? 'network' : '', boot.started ? 'program' : ''].filter(Boolean).join(' ');
  const short = (text: string) => c.paths.reduce((t, [long, name]) => t.replaceAll(long, name), text);
  return short([
    `#${c.index} [${c.base.name}] ${c.mutations.join('+') || '(base)'}: ${c.what.join('; ')}${c.cli.length ? ` (COMMAND ${c.cli.join(' ')})` : ''}`,
    `    check: ${check.code} ${JSON.stringify(check.first ?? null)}`,
    `    boot:  ${bootState} ${JSON.stringify(boot.message ?? null)}`,
  ].join('\n'));
}

/** Runs the jobs, `n` at a time, in order of their results. */
async function pool<T>(jobs: (() => Promise<T>)[], n: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]!();
      }
    }),
  );
  return results;
}
