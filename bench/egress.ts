// The egress proxy against direct https to the same service, in the same run (issue 12,
// "Benchmark"): request rate and latency with keep-alive on both paths, driven by wrk; and what
// a token costs: a cache hit (vs an already-resolved promise) and a cold mint against the fakes.
// Usage: node bench/egress.ts [--duration 5] [--runs 2] [--connections 1,16]
// Needs wrk and openssl on PATH.
//
//   direct: wrk ─https, keep-alive, a fixed token─▶ service
//   proxy:  wrk ─http (absolute-form), keep-alive─▶ tee-init (the bundle, an http-proxy listener) ─https, keep-alive, minted token─▶ service
// The service (a Node https server that verifies the RS256 ID token on every request, as Cloud
// Run's front door does) runs in this process with the loopback fakes; both paths share it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTokenSources } from '../src/credentials/tokens/index.ts';
import { createLog } from '../src/lib/log.ts';
import '../test/fakes/clients.ts';
import { startPrivateService } from '../test/fakes/private-service.ts';
import { startWorld } from '../test/fakes/world.ts';
import { createPki } from '../test/helpers/pki.ts';
import { freePort } from '../test/helpers/net.ts';
import { markdownTable, root } from './lib.ts';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' }, runs: { type: 'string', default: '2' }, connections: { type: 'string', default: '1,16' } } });
const DURATION = Number(values.duration);
const RUNS = Number(values.runs);
const CONNECTIONS = values.connections.split(',').map(Number);
const HOST = 'bench.a.run.app';

const dir = mkdtempSync(join(tmpdir(), 'tee-init-bench-egress-'));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const world = await startWorld();
const pki = createPki(join(dir, 'pki'), { serverSans: [`DNS:${HOST}`, 'IP:127.0.0.1'] });
const service = await startPrivateService({ url: `https://${HOST}`, cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key), jwks: world.gcp.googleKey.jwks });
const credentials = { alice: { type: 'confidential-space' as const, provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount! } };
const endpoints = { ...world.endpoints, teeserver: world.endpoints.teeserver! };

// Token costs, in this process.
const tokens = createTokenSources(credentials, {
  tokenFile: world.tokenFile, endpoints, teeserverTimeoutMs: 5000, log: createLog({ level: 'error' }),
  retry: { deadlineMs: 30_000, initialBackoffMs: 200, maxBackoffMs: 5000, attemptTimeoutMs: 10_000 },
});
const source = tokens.source({ kind: 'id-token', credentials: 'alice' });
const t0 = performance.now();
const token = await source.get(`https://${HOST}`);
const coldMs = performance.now() - t0;
const N = 200_000;
const perOp = async (fn: () => Promise<unknown>) => {
  for (let i = 0; i < 10_000; i++) await fn();
  const s = performance.now();
  for (let i = 0; i < N; i++) await fn();
  return ((performance.now() - s) * 1e6) / N;
};
const baselineNs = await perOp(() => Promise.resolve(token));
const hitNs = await perOp(() => source.get(`https://${HOST}`));
const hitNs2 = await perOp(() => source.get(`https://${HOST}`));
tokens.close();

// The proxy as users run it: the whole init (dist/tee-init.js) with a config whose egress
// listener serves a program (here a sleeping placeholder: wrk is the program's traffic).
const proxyPort = await freePort();
const configFile = join(dir, 'tee-init.json');
writeFileSync(join(dir, 'ca.pem'), readFileSync(pki.ca.cert));
writeFileSync(configFile, JSON.stringify({
  log: { level: 'info' },
  attestation: { tokenFile: world.tokenFile },
  credentials,
  secrets: { ca: { source: 'file', path: join(dir, 'ca.pem') } },
  endpoints,
  listeners: { egress: { type: 'http-proxy', listen: `127.0.0.1:${proxyPort}`, routes: [{ hosts: [HOST], token: { kind: 'id-token', credentials: 'alice' }, ca: 'ca', address: `127.0.0.1:${service.port}` }] } },
  run: { command: ['sleep', '3600'] },
}));
const proc = spawn(process.execPath, ['--disable-sigusr1', join(root, 'dist', 'tee-init.js'), '--config', configFile], {
  stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_PROXY: '127.0.0.1,localhost' },
});
children.add(proc);
await new Promise<void>((resolve, reject) => {
  let seen = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => {
    seen += c;
    if (seen.includes('egress proxy listening')) resolve();
  });
  proc.once('exit', (code) => reject(new Error(`tee-init exited ${code}: ${seen}`)));
});

const directScript = join(dir, 'direct.lua');
writeFileSync(directScript, `wrk.headers["Authorization"] = "Bearer ${token.value}"\nwrk.headers["Host"] = "${HOST}"\n`);
const proxyScript = join(dir, 'proxy.lua');
writeFileSync(proxyScript, `wrk.path = "http://${HOST}/hello"\n`);

interface Result { rps: number; p50: number; p99: number; cpuUsPerRequest?: number }
/** CPU time (user + system) of a process so far, in ms (clock ticks of 10 ms). */
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const toMs = (v: string) => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v)!;
  return Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1);
};
// Asynchronous: the service answers from this process's event loop meanwhile.
async function wrk(path: 'direct' | 'proxy', connections: number): Promise<Result> {
  const url = path === 'direct' ? `https://127.0.0.1:${service.port}/hello` : `http://127.0.0.1:${proxyPort}/`;
  const cpu0 = cpuMs(proc.pid!);
  const { stdout: out } = await promisify(execFile)('wrk', ['-t1', `-c${connections}`, `-d${DURATION}s`, '--latency', '-s', path === 'direct' ? directScript : proxyScript, url], { encoding: 'utf8' });
  if (/Non-2xx/.test(out)) throw new Error(`${path}: non-2xx answers:\n${out}`);
  const requests = Number(/(\d+) requests in/.exec(out)![1]);
  return {
    ...(path === 'proxy' ? { cpuUsPerRequest: ((cpuMs(proc.pid!) - cpu0) * 1000) / requests } : {}),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]),
    p50: toMs(/\s50%\s+(\S+)/.exec(out)![1]!),
    p99: toMs(/\s99%\s+(\S+)/.exec(out)![1]!),
  };
}

const rows: string[][] = [];
for (const c of CONNECTIONS) {
  const acc: Record<'direct' | 'proxy', Result[]> = { direct: [], proxy: [] };
  for (let r = 0; r < RUNS; r++) for (const p of ['direct', 'proxy'] as const) acc[p].push(await wrk(p, c)); // interleaved
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const d = { rps: med(acc.direct.map((x) => x.rps)), p50: med(acc.direct.map((x) => x.p50)), p99: med(acc.direct.map((x) => x.p99)) };
  const p = { rps: med(acc.proxy.map((x) => x.rps)), p50: med(acc.proxy.map((x) => x.p50)), p99: med(acc.proxy.map((x) => x.p99)) };
  const cpu = med(acc.proxy.map((x) => x.cpuUsPerRequest!));
  rows.push([String(c), d.rps.toFixed(0), p.rps.toFixed(0), `${(p.rps / d.rps).toFixed(2)}×`, `${d.p50.toFixed(2)} / ${d.p99.toFixed(2)}`, `${p.p50.toFixed(2)} / ${p.p99.toFixed(2)}`, `+${(p.p50 - d.p50).toFixed(2)}`, cpu.toFixed(0)]);
}
const mints = world.gcp.requestsOf('iam').filter((r) => r.path.endsWith(':generateIdToken')).length;
console.log(`egress proxy vs direct https (wrk -t1, ${DURATION}s × ${RUNS} runs interleaved, medians; keep-alive both; machine shared)`);
console.log(markdownTable(['connections', 'direct req/s', 'proxy req/s', 'proxy/direct', 'direct p50 / p99 ms', 'proxy p50 / p99 ms', 'added p50 ms', 'proxy CPU µs/request'], rows));
console.log(`\nID tokens minted over the whole run: ${mints} (1 in this process, the rest by the proxy)`);
console.log(markdownTable(['token cost', 'value'], [
  ['cold mint (STS + generateIdToken, loopback fakes)', `${coldMs.toFixed(1)} ms`],
  ['cache hit: source.get(audience)', `${hitNs.toFixed(0)} ns (again: ${hitNs2.toFixed(0)} ns)`],
  ['baseline: await Promise.resolve(token)', `${baselineNs.toFixed(0)} ns`],
]));
proc.kill('SIGTERM');
await service.close();
await world.close();
process.exit(0);
