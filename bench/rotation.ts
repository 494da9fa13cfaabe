// Rotation (issue 14), end to end on the whole init (dist/tee-init.js with a config, the fake
// Secret Manager/STS/IAM on loopback): a collaborator adds a new certificate version, the init
// gets SIGHUP, and we time
//   - "SIGHUP → rotated": from the signal to the init's `refresh: rotated` line (read the
//     token, exchange it, fetch, check, write and swap a generation, reload, wipe the old one);
//   - "SIGHUP → new cert seen": until a new openssl s_client through the tls listener sees the
//     new certificate (what a client notices);
//   - open connections: an s_client session opened before the rotations PINGs redis after each
//     one (dropped connections are counted).
// Baselines measured in the same run:
//   - "refresh, nothing changed": the same refresh when no version is new (the fetch alone);
//   - "restart the init": what a restart-based rotation costs: SIGTERM, a fresh boot, until the
//     listener serves again (and every open connection is dropped).
// Usage: npm run build && node bench/rotation.ts [--runs 9]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startWorld } from '../test/fakes/world.ts';
import { LogTail } from '../test/helpers/init.ts';
import { Lines } from '../test/helpers/lines.ts';
import { freePort } from '../test/helpers/net.ts';
import { createPki, issue, type KeyPair } from '../test/helpers/pki.ts';
import { bundlePath, markdownTable, percentile } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const RUNS = Number(values.runs);
const node = process.execPath;
const dir = mkdtempSync('/dev/shm/tee-init-bench-rotation-');
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const pki = createPki(join(dir, 'pki'));
const EXT = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=IP:127.0.0.1'];
const pairs: KeyPair[] = [pki.server, ...Array.from({ length: 2 * (RUNS + 6) }, (_, i) => issue(pki.dir, pki.ca, `s${i}`, `rotation-${i}-end`, EXT))];

const world = await startWorld();
const CERT = 'projects/alice-proj/secrets/bench-cert';
const KEY = 'projects/alice-proj/secrets/bench-key';
world.addSecret(CERT, readFileSync(pki.server.cert));
world.addSecret(KEY, readFileSync(pki.server.key));
world.addSecret('projects/bob-proj/secrets/bench-ca', readFileSync(pki.ca.cert));
let version = 0;
function rotate(): string {
  const p = pairs[++version]!;
  world.addVersion(CERT, readFileSync(p.cert));
  world.addVersion(KEY, readFileSync(p.key));
  return `rotation-${version - 1}-end`;
}

const [listen, redisPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
const base = {
  log: { level: 'info' },
  attestation: { tokenFile: world.tokenFile, require: { swname: 'CONFIDENTIAL_SPACE' } },
  credentials: {
    alice: { type: 'confidential-space', provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount },
    bob: { type: 'confidential-space', provider: world.providers.bob },
  },
  secrets: {
    cert: { source: 'gcp', ref: `${CERT}/versions/latest`, credentials: 'alice', file: 'server.crt' },
    key: { source: 'gcp', ref: `${KEY}/versions/latest`, credentials: 'alice', file: 'server.key' },
    ca: { source: 'gcp', ref: 'projects/bob-proj/secrets/bench-ca/versions/latest', credentials: 'bob', file: 'ca.pem' },
  },
  output: { dir: join(dir, 'out') },
  refresh: { every: '1h' },
  endpoints: world.endpoints,
};
/** Where the new certificate shows: the tls listener in front of redis, or redis itself. */
interface Scenario { name: string; port: number; config: Record<string, unknown> }
const SCENARIOS: Scenario[] = [
  {
    name: 'tls listener in front of redis (listener reload)',
    port: listen,
    config: {
      run: { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] },
      listeners: { mesh: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${redisPort}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } } },
    },
  },
  { name: 'redis preset with TLS (exec reload: redis-cli CONFIG SET)', port: tlsPort, config: { run: { preset: 'redis', with: { tlsPort } } } },
];
let configPath = '';
let port = 0;

function startInit(): { proc: ChildProcess; log: LogTail } {
  const proc = spawn(node, ['--disable-sigusr1', bundlePath(), '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_PROXY: '127.0.0.1' } });
  children.add(proc);
  const log = new LogTail();
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => log.push(c));
  proc.on('exit', () => (children.delete(proc), log.end()));
  return { proc, log };
}

/** An s_client session: the subject it saw, and PING over it. */
async function session(): Promise<{ subject: string; ping(): Promise<boolean>; close(): void }> {
  const proc = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki.ca.cert, '-cert', pki.client.cert, '-key', pki.client.key, '-verify_return_error', '-ign_eof'], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.add(proc);
  const lines = new Lines(proc.stdout!);
  const subject = (await lines.until(/^subject=(.*)$/, 15_000))[1]!;
  return {
    subject,
    async ping() {
      if (proc.exitCode !== null) return false;
      proc.stdin!.write('PING\r\n');
      return lines.until(/\+PONG/, 5_000).then(() => true, () => false);
    },
    close: () => void proc.kill('SIGKILL'),
  };
}

/** Polls new s_client sessions until one sees `cn`; ms since `t0`. */
async function untilServed(cn: string, t0: number): Promise<number> {
  for (;;) {
    try {
      const s = await session();
      s.close();
      if (s.subject.includes(cn)) return performance.now() - t0;
    } catch {
      // not listening yet (restart baseline)
    }
  }
}

const next = (log: LogTail, text: string) => {
  const from = log.records.length;
  return log.waitFor((r) => log.records.indexOf(r) >= from && r.message.includes(text), 60_000);
};

async function measure(scenario: Scenario): Promise<void> {
  configPath = join(dir, `config-${SCENARIOS.indexOf(scenario)}.json`);
  writeFileSync(configPath, JSON.stringify({ ...base, ...scenario.config }));
  port = scenario.port;
  const rotated: number[] = [];
  const served: number[] = [];
  const unchanged: number[] = [];
  const inInit: number[] = [];
  const swapped: number[] = [];
  let dropped = 0;
  let { proc, log } = startInit();
  await log.waitFor('all units ready', 60_000);
  const open = await session().catch((err: Error) => {
    throw new Error(`${scenario.name}: no TLS session after the init was ready: ${err.message}\n${log.lines.join('\n')}`);
  });
  for (let i = 0; i < RUNS; i++) {
    let t0 = performance.now();
    let done = next(log, 'no secret changed');
    proc.kill('SIGHUP');
    await done;
    unchanged.push(performance.now() - t0);

    const cn = rotate();
    t0 = performance.now();
    done = next(log, 'refresh: rotated');
    proc.kill('SIGHUP');
    const line = await done;
    rotated.push(performance.now() - t0);
    inInit.push(line.ms as number);
    swapped.push(line.swappedMs as number);
    served.push(await untilServed(cn, t0));
    if (!(await open.ping())) dropped++;
  }
  open.close();

  // Baseline: a restart of the whole init serves the next certificate.
  const restarts: number[] = [];
  let droppedByRestart = 0;
  for (let i = 0; i < Math.min(RUNS, 5); i++) {
    const before = await session();
    const cn = rotate();
    const t0 = performance.now();
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    ({ proc, log } = startInit());
    restarts.push(await untilServed(cn, t0));
    if (!(await before.ping())) droppedByRestart++;
    before.close();
  }
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));

  const row = (what: string, xs: number[], base?: number[]) => [what, String(xs.length), percentile(xs, 50).toFixed(0), percentile(xs, 90).toFixed(0), base ? `${(percentile(xs, 50) / percentile(base, 50)).toFixed(2)}×` : ''];
  console.log(`\n**${scenario.name}**\n`);
  console.log(markdownTable(['', 'n', 'p50 ms', 'p90 ms', 'vs restart'], [
    row('refresh, nothing changed (SIGHUP → line)', unchanged),
    row('rotation: SIGHUP → `refresh: rotated`', rotated, restarts),
    row('  of which in the init (refresh → rotated)', inInit),
    row('  of which fetch+check+swap (→ files swapped)', swapped),
    row('rotation: SIGHUP → a new client sees the new cert', served, restarts),
    row('baseline: restart the init → new cert served', restarts, restarts),
  ]));
  console.log(`\nopen connection across ${RUNS} rotations: ${dropped} dropped; across ${restarts.length} restarts: ${droppedByRestart} dropped`);
}

console.log(`rotation, ${RUNS} runs per scenario, node ${process.version}, the whole init, 3 secrets (cert, key, ca) from the fake Secret Manager`);
for (const scenario of SCENARIOS.filter((s) => !process.env.ONLY || s.name.includes(process.env.ONLY))) await measure(scenario);
await world.close();
