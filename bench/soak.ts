// Memory under refresh (issue 19): the whole init (dist/tee-init.js) on the fake world with a
// `tls` listener, the redis preset and 3 secrets (cert, key, ca), `refresh: every 1s`, for N
// minutes. Every --rotate-every-th refresh finds a new certificate version (two key pairs in
// turn), so rotations (write, swap, redis CONFIG SET, the listener's reload) happen too; a mutual
// TLS client goes through the listener once per sample. The init's RSS (all its threads:
// /proc/PID/status VmRSS) is sampled every --sample seconds; the table and the slope (least
// squares over the second half, MiB per minute) are printed, with RSS split into anonymous
// memory (the init's own: heaps, buffers) and file pages (mostly the node binary's code and
// data, shared with the page cache and reclaimable). Target: ≤ 90 MB at 10 minutes, no growth
// trend.
// Usage: npm run bench:soak -- [--minutes 10] [--sample 10] [--rotate-every 10] [--workers N]
//   [--node-args="--max-semi-space-size=1"] (node flags, for trials; default: those of the
//   bundle's start line, as the shebang runs it) [--source file] (the 3 secrets from files,
//   rotated by rewriting them, no attestation or credentials: what the Google clients cost)
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import { startWorld } from '../test/fakes/world.ts';
import { LogTail } from '../test/helpers/init.ts';
import { freePort } from '../test/helpers/net.ts';
import { createPki, issue, leaf } from '../test/helpers/pki.ts';
import { bundlePath, startLineNodeArgs, markdownTable, rssMiB } from './lib.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    sample: { type: 'string', default: '10' },
    'rotate-every': { type: 'string', default: '10' },
    workers: { type: 'string' },
    'node-args': { type: 'string' },
    source: { type: 'string', default: 'gcp' },
  },
});
const MINUTES = Number(values.minutes);
const SAMPLE_S = Number(values.sample);
const ROTATE_EVERY = Number(values['rotate-every']);
if (values.source !== 'gcp' && values.source !== 'file') throw new Error(`--source ${values.source}: gcp or file`);
const FROM_FILES = values.source === 'file';
const dir = mkdtempSync('/dev/shm/tee-init-bench-soak-');
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
// Stopped early (Ctrl-C): the 'exit' handler above still takes the init and redis down.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

const pki = createPki(join(dir, 'pki'));
const pairs = [pki.server, issue(pki.dir, pki.ca, 'server-b', 'soak-b', leaf('serverAuth', ['IP:127.0.0.1']))];
const world = await startWorld();
const CERT = 'projects/alice-proj/secrets/soak-cert';
const KEY = 'projects/alice-proj/secrets/soak-key';
world.addSecret(CERT, readFileSync(pki.server.cert));
world.addSecret(KEY, readFileSync(pki.server.key));
world.addSecret('projects/bob-proj/secrets/soak-ca', readFileSync(pki.ca.cert));

// What the listener forwards to: an echo, so each sample's client sees its bytes come back.
const echo = createServer((s) => s.on('error', () => {}).pipe(s));
echo.listen(0, '127.0.0.1');
await once(echo, 'listening');
const [listen, redisPort] = [await freePort(), await freePort()];
// --source file: the same three secrets from files the rotator rewrites (rename, so a read never sees half a file).
const sourceFile = (name: string) => join(dir, `source-${name}.pem`);
const writeSource = (name: string, data: Buffer) => {
  writeFileSync(`${sourceFile(name)}.new`, data);
  renameSync(`${sourceFile(name)}.new`, sourceFile(name));
};
if (FROM_FILES) {
  writeSource('cert', readFileSync(pki.server.cert));
  writeSource('key', readFileSync(pki.server.key));
  writeSource('ca', readFileSync(pki.ca.cert));
}
const google = {
  attestation: { tokenFile: world.tokenFile, require: { swname: 'CONFIDENTIAL_SPACE' } },
  credentials: {
    alice: { type: 'confidential-space', provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount },
    bob: { type: 'confidential-space', provider: world.providers.bob },
  },
  secrets: {
    cert: { source: 'gcp', ref: `${CERT}/versions/latest`, credentials: 'alice', file: 'server.crt' },
    key: { source: 'gcp', ref: `${KEY}/versions/latest`, credentials: 'alice', file: 'server.key' },
    ca: { source: 'gcp', ref: 'projects/bob-proj/secrets/soak-ca/versions/latest', credentials: 'bob', file: 'ca.pem' },
  },
  endpoints: world.endpoints,
};
const files = {
  secrets: {
    cert: { source: 'file', path: sourceFile('cert'), file: 'server.crt' },
    key: { source: 'file', path: sourceFile('key'), file: 'server.key' },
    ca: { source: 'file', path: sourceFile('ca'), file: 'ca.pem' },
  },
};
const config = {
  log: { level: 'info' },
  ...(FROM_FILES ? files : google),
  output: { dir: join(dir, 'out') },
  refresh: { every: '1s', jitter: 0 },
  run: { preset: 'redis', with: { tlsPort: redisPort, bind: '127.0.0.1' } },
  listeners: {
    mesh: {
      type: 'tls', mode: 'strict', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${(echo.address() as AddressInfo).port}`,
      tls: { cert: 'cert', key: 'key', ca: 'ca' },
      ...(values.workers === undefined ? {} : { workers: Number(values.workers) }),
    },
  },
};
const configPath = join(dir, 'config.json');
writeFileSync(configPath, JSON.stringify(config));

const bundle = process.env.TEE_INIT_BUNDLE ?? bundlePath();
const nodeArgs = values['node-args'] !== undefined ? values['node-args'].split(/\s+/).filter(Boolean) : startLineNodeArgs(bundle);
// TEE_INIT_BUNDLE: a copy of dist/ to soak, so that rebuilding dist/ meanwhile does not pull chunks from under it.
const init = spawn(process.execPath, ['--disable-sigusr1', ...nodeArgs, bundle, '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_PROXY: '127.0.0.1' } });
children.add(init);
const log = new LogTail();
init.stderr!.setEncoding('utf8').on('data', (c: string) => log.push(c));
init.once('exit', (code, signal) => {
  children.delete(init);
  if (!stopping) {
    console.error(`the init exited (${code ?? signal}) during the soak:\n${log.lines.slice(-30).join('\n')}`);
    process.exit(1);
  }
});
let stopping = false;
await log.waitFor('all units ready', 120_000);

/** VmRSS's parts, MiB: anonymous (RssAnon + RssShmem) and file-backed (RssFile). */
function rssSplit(pid: number): { anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { anon: (kib('RssAnon') + kib('RssShmem')) / 1024, file: kib('RssFile') / 1024 };
}

/** One mutual TLS connection through the listener: false when it did not echo. */
async function probe(): Promise<boolean> {
  const s = tlsConnect({ host: '127.0.0.1', port: listen, ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) });
  try {
    await once(s, 'secureConnect');
    s.write('ping');
    const [chunk] = (await once(s, 'data')) as [Buffer];
    return chunk.toString() === 'ping';
  } catch {
    return false;
  } finally {
    s.destroy();
  }
}

// Refresh is the init's own timer (every 1s); new versions appear from here.
let version = 0;
const rotator = setInterval(() => {
  const p = pairs[++version % 2]!;
  if (FROM_FILES) {
    writeSource('cert', readFileSync(p.cert));
    writeSource('key', readFileSync(p.key));
    return;
  }
  world.addVersion(CERT, readFileSync(p.cert));
  world.addVersion(KEY, readFileSync(p.key));
}, ROTATE_EVERY * 1000);

const count = (text: string) => log.records.filter((r) => r.message.includes(text)).length;
const rows: string[][] = [];
const samples: { t: number; rss: number }[] = [];
const t0 = performance.now();
let failedProbes = 0;
console.log(`soak: ${MINUTES} min, secrets from ${FROM_FILES ? 'files' : 'Secret Manager (the fake)'}, refresh every 1 s, a new certificate every ${ROTATE_EVERY} s, RSS of the init (pid ${init.pid}, all threads) every ${SAMPLE_S} s${nodeArgs.length ? `, node ${nodeArgs.join(' ')}` : ''}`);
for (;;) {
  const t = (performance.now() - t0) / 1000;
  if (!(await probe())) failedProbes++;
  const rss = rssMiB(init.pid!);
  samples.push({ t, rss });
  const split = rssSplit(init.pid!);
  const row = [(t / 60).toFixed(1), rss.toFixed(1), split.anon.toFixed(1), split.file.toFixed(1), String(count('no secret changed') + count('refresh: rotated')), String(count('refresh: rotated')), String(failedProbes)];
  rows.push(row);
  console.log(row.join('\t'));
  if (t >= MINUTES * 60) break;
  await new Promise((r) => setTimeout(r, SAMPLE_S * 1000 - (((performance.now() - t0) / 1000) % SAMPLE_S) * 1000));
}
clearInterval(rotator);

/** Least-squares slope of RSS over time, MiB per minute. */
function slope(xs: { t: number; rss: number }[]): number {
  const n = xs.length;
  const mt = xs.reduce((a, x) => a + x.t, 0) / n;
  const mr = xs.reduce((a, x) => a + x.rss, 0) / n;
  const num = xs.reduce((a, x) => a + (x.t - mt) * (x.rss - mr), 0);
  const den = xs.reduce((a, x) => a + (x.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}
const second = samples.slice(Math.floor(samples.length / 2));
console.log(`\n${markdownTable(['minute', 'RSS MiB', 'anon', 'file', 'refreshes', 'rotations', 'failed probes'], rows)}`);
const peak = Math.max(...samples.map((s) => s.rss));
console.log(`\nRSS first ${samples[0]!.rss.toFixed(1)} MiB, last ${samples.at(-1)!.rss.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB; slope over the second half ${slope(second).toFixed(2)} MiB/min, over all ${slope(samples).toFixed(2)} MiB/min`);
stopping = true;
init.kill('SIGTERM');
await once(init, 'exit');
echo.close();
await world.close();
