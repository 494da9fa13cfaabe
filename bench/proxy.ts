// The data plane against its floor and stunnel, in one interleaved run (issues 11 and 19).
// Usage:
//   node bench/proxy.ts [--quick] [--bytes 256M] [--runs 3] [--requests 50000] [--clients 50] [--only permissive,...]
//     [--idle 1000] [--http 2000] [--node-load]
// --quick: 16 MiB, 1 run, 5000 PINGs, 100 idle connections, 300 HTTP requests (a smoke run).
// --node-load: the bulk load (senders and sink) in this Node process, as before bench/load/main.go.
// Needs stunnel, redis-server, redis-benchmark, go (bench/load/main.go is built into .cache/).
// `npm run bench:proxy` builds the bundle first.
//
//   load ─plain─▶ stunnel client ─TLS 1.3 (AES-128-GCM)─▶ SERVER ─plain─▶ sink / redis
// The client hop is always the same stunnel (PSK or certificates); SERVER is one of
//   stunnel                       the C anchor on the same OpenSSL;
//   Node floor (bench/floor.ts)   a TLS server piped to TCP with Node's pipe(): what Node costs;
//   tee-init, N workers           the whole init, its data path in worker threads (the default);
//   tee-init, workers: 0          the whole init, the data path in the init's own thread.
// One process serves two listeners (services): one to the byte sink, one to redis. CPU ms per
// MiB is the SERVER process's (all its threads: /proc/PID/stat), robust on a loaded machine.
// Then: permissive plaintext vs direct TCP and the floor's plain pipe; the egress proxy vs
// direct https and its Node floor (bench/floor-http.ts) on one kept-alive connection; the tunnel pair (h2c) vs the PSK pair.
// Runs are interleaved so that machine drift hits every variant alike; cells are medians with
// the spread (min–max) of the runs.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { type AddressInfo, connect as tcpConnect, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLog } from '../src/lib/log.ts';
import { waitForPort } from '../src/proxy/ready.ts';
import { createPki } from '../test/helpers/pki.ts';
import { freePort } from '../test/helpers/net.ts';
import { type Load, startGoLoad, startNodeLoad } from './load.ts';
import { bundlePath, startLineNodeArgs, cpuSeconds, markdownTable, parseSize, percentile, root, rssMiB } from './lib.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    bytes: { type: 'string' },
    runs: { type: 'string' },
    requests: { type: 'string' },
    clients: { type: 'string', default: '50' },
    idle: { type: 'string' },
    http: { type: 'string' },
    only: { type: 'string' },
    'init-node-args': { type: 'string' },
    'node-load': { type: 'boolean', default: false },
  },
});
/** The inits run with the bundle's start-line flags (what ships); --init-node-args="..." replaces them (trials). */
const INIT_NODE_ARGS = values['init-node-args'] !== undefined ? values['init-node-args'].split(/\s+/).filter(Boolean) : startLineNodeArgs(bundlePath());
/** --only psk,mtls,permissive,tunnel,egress: just those sections (a run of the rows a change touches). */
const ONLY = new Set((values.only ?? 'psk,mtls,permissive,tunnel,egress').split(','));
const Q = values.quick;
const BYTES = parseSize(values.bytes ?? (Q ? '16M' : '256M'));
const RUNS = Number(values.runs ?? (Q ? 1 : 3));
const REQUESTS = Number(values.requests ?? (Q ? 5000 : 50000));
const CLIENTS = Number(values.clients);
const IDLE = Number(values.idle ?? (Q ? 100 : 1000));
const HTTP_REQUESTS = Number(values.http ?? (Q ? 300 : 2000));

const SHARE_A = '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90'; // psk.md test vector
const SHARE_B = 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2';
const KEY_HEX = '2f835009708d32bb71a72a0deda737be2049acc6deae0b1ec7ebd4f25bc16b7c';
const SUITE = 'TLS_AES_128_GCM_SHA256';
const HOST = 'bench.a.run.app';
const dir = mkdtempSync(join(tmpdir(), 'tee-init-bench-proxy-'));
const pki = createPki(join(dir, 'pki'), { serverSans: ['DNS:localhost', `DNS:${HOST}`, 'IP:127.0.0.1'] });
const quiet = createLog({ level: 'error' });
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
writeFileSync(join(dir, 'share_a'), SHARE_A);
writeFileSync(join(dir, 'share_b'), SHARE_B);
const PSK_FILE = join(dir, 'psk.txt');
writeFileSync(PSK_FILE, `Client1:${KEY_HEX}\n`, { mode: 0o600 });

function spawnTracked(argv: string[], env: Record<string, string> = {}): ChildProcess {
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NO_PROXY: '127.0.0.1,localhost', ...env } });
  children.add(p);
  let err = '';
  p.stderr!.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4000)));
  p.once('exit', (code) => {
    children.delete(p);
    if (code !== 0 && code !== null && !stopping.has(p)) console.error(`${argv[0]} exited ${code}:\n${err}`);
  });
  return p;
}

const stopping = new WeakSet<ChildProcess>();
async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  stopping.add(p);
  p.kill('SIGTERM');
  await once(p, 'exit');
}

// --- backends -------------------------------------------------------------------------------
// --- servers under test -----------------------------------------------------------------------
type Auth = 'psk' | 'mtls';
interface Targets { sink: number; redis: number }
interface Server {
  name: string;
  /** The processes whose CPU counts (a pair's two hops). */
  pids: number[];
  /** Ports by target. */
  ports: Targets;
  procs: ChildProcess[];
}

const SECRETS = {
  share_a: join(dir, 'share_a'), share_b: join(dir, 'share_b'),
  cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert, client_cert: pki.client.cert, client_key: pki.client.key,
};
const PSK_IDENTITIES = { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } };

/** The whole init (the bundle) with `listeners` (each listen port given), beside a placeholder program. */
async function startInitWith(listeners: Record<string, Record<string, unknown> & { listen: string }>, env: Record<string, string> = {}): Promise<ChildProcess> {
  const config = {
    log: { level: 'error' },
    secrets: Object.fromEntries(Object.entries(SECRETS).map(([name, path]) => [name, { source: 'file', path }])),
    run: { command: ['sleep', '3600'] },
    listeners,
  };
  const file = join(dir, `init-${Object.values(listeners)[0]!.listen.split(':')[1]}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proc = spawnTracked([process.execPath, '--disable-sigusr1', ...INIT_NODE_ARGS, bundlePath(), '--config', file], env);
  for (const l of Object.values(listeners)) {
    await waitForPort({ host: '127.0.0.1', port: Number(l.listen.split(':')[1]) }, quiet, { timeoutMs: 60_000, intervalMs: 20 });
  }
  return proc;
}

async function startInit(auth: Auth | 'permissive', targets: Targets, workers?: number, nodePipe = false): Promise<Server> {
  const ports = { sink: await freePort(), redis: await freePort() };
  const tls = { cert: 'cert', key: 'key', ca: 'ca' };
  const w = workers === undefined ? {} : { workers };
  const listener = (port: number, to: number) => ({
    ...(auth === 'psk'
      ? { type: 'psk', mode: 'server', identities: PSK_IDENTITIES }
      : { type: 'tls', mode: auth === 'mtls' ? 'strict' : 'permissive', tls }),
    listen: `127.0.0.1:${port}`, connect: `127.0.0.1:${to}`, maxConnections: 20_000, ...w,
  });
  const proc = await startInitWith({ sink: listener(ports.sink, targets.sink), redis: listener(ports.redis, targets.redis) }, nodePipe ? { TEE_INIT_SPLICE: 'off' } : {});
  const name = auth === 'permissive'
    ? `tee-init permissive${workers === 0 ? ', workers: 0' : ''}${nodePipe ? ', Node pipe (TEE_INIT_SPLICE=off)' : ''}`
    : `tee-init${workers === 0 ? ', workers: 0' : `, ${workers ?? Math.min(cpus().length, 4)} workers (default)`}`;
  return { name, pids: [proc.pid!], ports, procs: [proc] };
}

/** bench/floor.ts: one process per target (it serves one port). */
async function startFloor(auth: Auth | 'plain', targets: Targets): Promise<Server> {
  const ports = { sink: await freePort(), redis: await freePort() };
  const creds = auth === 'psk' ? ['--psk', KEY_HEX] : auth === 'mtls' ? ['--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca.cert] : [];
  const procs = (['sink', 'redis'] as const).map((t) =>
    spawnTracked([process.execPath, join(root, 'bench', 'floor.ts'), '--auth', auth, '--listen', String(ports[t]), '--connect', String(targets[t]), ...creds]));
  for (const t of ['sink', 'redis'] as const) await waitForPort({ host: '127.0.0.1', port: ports[t] }, quiet, { timeoutMs: 30_000, intervalMs: 20 });
  // CPU is read from the sink's process: bulk goes there (PING's CPU is not reported).
  return { name: auth === 'plain' ? 'Node floor: net pipe()' : 'Node floor (bench/floor.ts)', pids: [procs[0]!.pid!], ports, procs };
}

function stunnelAuth(auth: Auth, client: boolean): string[] {
  if (auth === 'psk') return [`PSKsecrets = ${PSK_FILE}`, ...(client ? ['PSKidentity = Client1'] : [])];
  return client
    ? [`cert = ${pki.client.cert}`, `key = ${pki.client.key}`, `CAfile = ${pki.ca.cert}`, 'verifyChain = yes', 'checkIP = 127.0.0.1']
    : [`cert = ${pki.server.cert}`, `key = ${pki.server.key}`, `CAfile = ${pki.ca.cert}`, 'verifyChain = yes', 'requireCert = yes'];
}

/** One stunnel process with a service per target. */
async function startStunnel(auth: Auth, client: boolean, targets: Targets): Promise<Server> {
  const ports = { sink: await freePort(), redis: await freePort() };
  const conf = join(dir, `stunnel-${ports.sink}.conf`);
  const service = (name: string, port: number, to: number) => [
    `[${name}]`, `client = ${client ? 'yes' : 'no'}`, `accept = 127.0.0.1:${port}`, `connect = 127.0.0.1:${to}`,
    ...stunnelAuth(auth, client), 'sslVersionMin = TLSv1.3', `ciphersuites = ${SUITE}`,
  ];
  // debug = 3: errors only, no per-connection logging in the measurement.
  writeFileSync(conf, ['foreground = yes', 'pid =', 'debug = 3', 'syslog = no',
    ...service('sink', ports.sink, targets.sink), ...service('redis', ports.redis, targets.redis), ''].join('\n'));
  const proc = spawnTracked(['stunnel', conf]);
  await waitForPort({ host: '127.0.0.1', port: ports.sink }, quiet, { timeoutMs: 10_000, intervalMs: 10 });
  return { name: client ? 'stunnel client' : 'stunnel', pids: [proc.pid!], ports, procs: [proc] };
}

/** Two inits: a client hop (plain in) and a server hop (to the targets), PSK or a tunnel (h2c) between them. */
async function startPair(kind: 'psk' | 'h2c', targets: Targets): Promise<Server> {
  const sp = { sink: await freePort(), redis: await freePort() };
  const cp = { sink: await freePort(), redis: await freePort() };
  const each = (f: (t: 'sink' | 'redis') => Record<string, unknown> & { listen: string }) => ({ sink: f('sink'), redis: f('redis') });
  const server = await startInitWith(each((t) => kind === 'psk'
    ? { type: 'psk', mode: 'server', identities: PSK_IDENTITIES, listen: `127.0.0.1:${sp[t]}`, connect: `127.0.0.1:${targets[t]}`, maxConnections: 20_000 }
    : { type: 'tunnel', mode: 'server', h2c: true, listen: `127.0.0.1:${sp[t]}`, connect: `127.0.0.1:${targets[t]}`, maxConnections: 20_000, maxStreams: 1000 }));
  const client = await startInitWith(each((t) => kind === 'psk'
    ? { type: 'psk', mode: 'client', identities: PSK_IDENTITIES, listen: `127.0.0.1:${cp[t]}`, connect: `127.0.0.1:${sp[t]}`, maxConnections: 20_000 }
    : { type: 'tunnel', mode: 'client', url: `http://127.0.0.1:${sp[t]}/`, listen: `127.0.0.1:${cp[t]}`, maxConnections: 20_000 }));
  return { name: kind === 'psk' ? 'PSK pair (two inits)' : 'tunnel pair, h2c (two inits)', pids: [client.pid!, server.pid!], ports: cp, procs: [client, server] };
}

// --- loads ------------------------------------------------------------------------------------
const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/** MB/s of `conns` connections sending BYTES in all to the sink through `port`; the servers' and the load's CPU ms per MiB. */
async function bulk(load: Load, port: number, conns: number, pids: number[]): Promise<{ mbps: number; cpuPerMiB: number; loadCpuPerMiB: number }> {
  const cpu0 = cpuOf(pids);
  const load0 = load.cpu();
  const s = await load.run(port, conns, BYTES);
  const cpu = pids.length ? cpuOf(pids) - cpu0 : NaN;
  const perMiB = (seconds: number) => (seconds * 1000) / (BYTES / 2 ** 20);
  return { mbps: BYTES / 1e6 / s, cpuPerMiB: perMiB(cpu), loadCpuPerMiB: perMiB(load.cpu() - load0) };
}

function ping(port: number): { rps: number; p50: number; p99: number } {
  const out = execFileSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'ping', '-n', String(REQUESTS), '-c', String(CLIENTS), '--csv'], { encoding: 'utf8' });
  const row = out.split('\n').find((l) => l.startsWith('"PING_MBULK"'))!.split(',').map((c) => Number(c.replaceAll('"', '')));
  return { rps: row[1]!, p50: row[4]!, p99: row[6]! };
}

/** RSS of the server process with IDLE connections open through `port` (minus its RSS before). */
async function idleRss(port: number, pid: number, load: Load): Promise<{ rss: number; before: number }> {
  const before = rssMiB(pid);
  const opened: Socket[] = [];
  for (let i = 0; i < IDLE; i++) {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    opened.push(s);
    if (i % 50 === 49) await once(s, 'connect');
  }
  await Promise.all(opened.map((s) => (s.connecting ? once(s, 'connect') : undefined)));
  // Every connection reached the sink: the TLS sessions are up end to end. (Polling: the sink
  // has no event for "N connections", and this is a benchmark, not a test.)
  const deadline = Date.now() + 60_000;
  while ((await load.open()) < IDLE && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const rss = rssMiB(pid);
  for (const s of opened) s.destroy();
  while ((await load.open()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { rss, before };
}

/** Sequential GETs on one kept-alive connection: latencies in ms. */
async function httpLatencies(get: () => Promise<void>, n: number): Promise<number[]> {
  for (let i = 0; i < Math.min(50, n); i++) await get(); // warm-up: connection up, JIT warm
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await get();
    out.push(performance.now() - t0);
  }
  return out;
}

// --- the run -----------------------------------------------------------------------------------
const median = (v: number[]) => percentile(v, 50);
const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
/** Median, ratio to a base's median, and the spread (min–max) when there are several runs. */
const cell = (v: number[], base?: number[], d = 1) => !Number.isFinite(median(v)) ? '–' :
  `${f(median(v), d)}${base ? ` (${f(median(v) / median(base), 2)}×)` : ''}${v.length > 1 ? ` [${f(Math.min(...v), d)}–${f(Math.max(...v), d)}]` : ''}`;

interface Row { name: string; bulk1: number[]; bulk16: number[]; cpu1: number[]; cpu16: number[]; load1: number[]; rps: number[]; p50: number[]; p99: number[]; rss?: { rss: number; before: number } }
const newRow = (name: string): Row => ({ name, bulk1: [], bulk16: [], cpu1: [], cpu16: [], load1: [], rps: [], p50: [], p99: [] });

/** Interleaved runs over `servers` (each reached through `entry[i]`): bulk 1 and 16, PING. */
async function measure(load: Load, servers: Server[], entry: Targets[], opts: { many?: boolean; ping?: boolean } = {}): Promise<Row[]> {
  const rows = servers.map((s) => newRow(s.name));
  for (const [i, s] of servers.entries()) await bulk(load, entry[i]!.sink, 1, s.pids); // warm-up
  for (let run = 0; run < RUNS; run++) {
    for (const [i, s] of servers.entries()) {
      const one = await bulk(load, entry[i]!.sink, 1, s.pids);
      rows[i]!.bulk1.push(one.mbps); rows[i]!.cpu1.push(one.cpuPerMiB); rows[i]!.load1.push(one.loadCpuPerMiB);
      if (opts.many !== false) {
        const many = await bulk(load, entry[i]!.sink, 16, s.pids);
        rows[i]!.bulk16.push(many.mbps); rows[i]!.cpu16.push(many.cpuPerMiB);
      }
      if (opts.ping !== false) {
        const p = ping(entry[i]!.redis);
        rows[i]!.rps.push(p.rps); rows[i]!.p50.push(p.p50); rows[i]!.p99.push(p.p99);
      }
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const load = values['node-load'] ? await startNodeLoad() : await startGoLoad((proc) => (children.add(proc), proc.once('exit', () => children.delete(proc))));
  const redisPort = await freePort();
  const redis = spawnTracked(['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await waitForPort({ host: '127.0.0.1', port: redisPort }, quiet, { timeoutMs: 10_000 });
  const targets = { sink: load.port, redis: redisPort };
  const sections: string[] = [];

  for (const auth of (['psk', 'mtls'] as const).filter((a) => ONLY.has(a))) {
    const servers = [await startStunnel(auth, false, targets), await startFloor(auth, targets), await startInit(auth, targets), await startInit(auth, targets, 0)];
    // One stunnel client per server, so every path has the same client hop.
    const clients = await Promise.all(servers.map((s) => startStunnel(auth, true, s.ports)));
    const rows = await measure(load, servers, clients.map((c) => c.ports));
    for (const [i, s] of servers.entries()) rows[i]!.rss = await idleRss(clients[i]!.ports.sink, s.pids[0]!, load);
    const [base, floor] = [rows[0]!, rows[1]!];
    sections.push(`### ${auth === 'psk' ? 'TLS-PSK' : 'Certificate mTLS (strict)'}: server hop, same stunnel client\n\n${markdownTable(
      ['server', '1 conn MB/s (× stunnel)', '16 conns MB/s (× stunnel)', 'CPU ms/MiB, 1 conn (× floor)', 'CPU ms/MiB, 16 conns (× floor)', `PING rps, c=${CLIENTS} (× stunnel)`, 'PING p50 / p99 ms', `RSS MiB with ${IDLE} idle (before)`],
      rows.map((r) => [r.name, cell(r.bulk1, base.bulk1), cell(r.bulk16, base.bulk16), cell(r.cpu1, floor.cpu1, 2), cell(r.cpu16, floor.cpu16, 2),
        cell(r.rps, base.rps, 0), `${f(median(r.p50), 3)} / ${f(median(r.p99), 3)}`, `${f(r.rss!.rss)} (${f(r.rss!.before)})`]),
    )}`);
    await Promise.all([...servers, ...clients].flatMap((s) => s.procs.map(stop)));
  }

  // Permissive mode's plaintext path (splice(2)) against direct TCP, Node's own pipe, and the
  // init's Node pipe path.
  if (ONLY.has('permissive')) {
    const servers = [
      { name: 'direct TCP', pids: [], ports: targets, procs: [] } as Server,
      await startFloor('plain', targets), await startInit('permissive', targets), await startInit('permissive', targets, 0),
      await startInit('permissive', targets, undefined, true),
    ];
    const rows = await measure(load, servers, servers.map((s) => s.ports));
    const [d, floor] = [rows[0]!, rows[1]!];
    sections.push(`### Permissive mode, plaintext client, vs direct TCP and Node's pipe\n\n${markdownTable(
      ['path', '1 conn MB/s (× direct)', '16 conns MB/s (× direct)', 'CPU ms/MiB, 1 conn (× Node pipe)', 'CPU ms/MiB, 16 conns (× Node pipe)', 'load CPU ms/MiB, 1 conn', 'PING rps (× direct)', 'PING p99 ms'],
      rows.map((r) => [r.name, cell(r.bulk1, d.bulk1), cell(r.bulk16, d.bulk16), cell(r.cpu1, floor.cpu1, 2), cell(r.cpu16, floor.cpu16, 2), cell(r.load1, undefined, 2), cell(r.rps, d.rps, 0), f(median(r.p99), 3)]),
    )}`);
    await Promise.all(servers.flatMap((s) => s.procs.map(stop)));
  }

  // The tunnel pair (h2c) against the PSK pair: two inits each, CPU is both hops'.
  if (ONLY.has('tunnel')) {
    const servers = [await startPair('psk', targets), await startPair('h2c', targets)];
    const rows = await measure(load, servers, servers.map((s) => s.ports));
    const base = rows[0]!;
    sections.push(`### Tunnel pair (h2c) vs the PSK pair: two inits each, CPU of both\n\n${markdownTable(
      ['path', '1 conn MB/s (× PSK pair)', '16 conns MB/s (× PSK pair)', 'CPU ms/MiB, 1 conn', 'CPU ms/MiB, 16 conns', 'PING rps (× PSK pair)', 'PING p99 ms'],
      rows.map((r) => [r.name, cell(r.bulk1, base.bulk1), cell(r.bulk16, base.bulk16), cell(r.cpu1, undefined, 2), cell(r.cpu16, undefined, 2), cell(r.rps, base.rps, 0), f(median(r.p99), 3)]),
    )}`);
    await Promise.all(servers.flatMap((s) => s.procs.map(stop)));
  }

  // The egress proxy (an http-proxy listener, a route without a token) against direct https to
  // the same service and against the egress floor (bench/floor-http.ts: Node's own forwarding),
  // sequential GETs on one kept-alive connection, the three interleaved run by run.
  if (ONLY.has('egress')) {
    const service = createHttpsServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key), keepAliveTimeout: 60_000 }, (_req, res) => res.end('hello\n'));
    service.listen(0, '127.0.0.1');
    await once(service, 'listening');
    const servicePort = (service.address() as AddressInfo).port;
    const proxyPort = await freePort();
    const floorPort = await freePort();
    const init = await startInitWith({ egress: { type: 'http-proxy', listen: `127.0.0.1:${proxyPort}`, routes: [{ hosts: [HOST], ca: 'ca', address: `127.0.0.1:${servicePort}` }] } });
    const floor = spawnTracked([process.execPath, join(root, 'bench', 'floor-http.ts'), '--listen', String(floorPort), '--connect', String(servicePort), '--ca', pki.ca.cert, '--servername', HOST]);
    await waitForPort({ host: '127.0.0.1', port: floorPort }, quiet, { timeoutMs: 30_000, intervalMs: 20 });
    const ca = readFileSync(pki.ca.cert);
    const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca });
    const drain = (resolve: () => void, reject: (e: Error) => void) => (res: import('node:http').IncomingMessage) => {
      if (res.statusCode !== 200) reject(new Error(`egress bench: status ${res.statusCode}`));
      res.resume().on('end', resolve);
    };
    const direct = () => new Promise<void>((resolve, reject) =>
      httpsRequest({ host: '127.0.0.1', port: servicePort, servername: HOST, path: '/hello', agent: httpsAgent, headers: { host: HOST } }, drain(resolve, reject)).on('error', reject).end());
    const via = (port: number) => {
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      const get = () => new Promise<void>((resolve, reject) =>
        httpRequest({ host: '127.0.0.1', port, path: `http://${HOST}/hello`, agent, headers: { host: HOST } }, drain(resolve, reject)).on('error', reject).end());
      return { get, agent };
    };
    const proxies = [
      { name: 'Node floor (bench/floor-http.ts)', pid: floor.pid!, ...via(floorPort), p50: [] as number[], p99: [] as number[], added: [] as number[], cpu: [] as number[] },
      { name: 'egress proxy (tee-init http-proxy)', pid: init.pid!, ...via(proxyPort), p50: [] as number[], p99: [] as number[], added: [] as number[], cpu: [] as number[] },
    ];
    const directRuns = { p50: [] as number[], p99: [] as number[] };
    for (let run = 0; run < RUNS; run++) {
      const d = await httpLatencies(direct, HTTP_REQUESTS);
      directRuns.p50.push(median(d));
      directRuns.p99.push(percentile(d, 99));
      for (const p of proxies) {
        const cpu0 = cpuSeconds(p.pid);
        const r = await httpLatencies(p.get, HTTP_REQUESTS);
        p.cpu.push(((cpuSeconds(p.pid) - cpu0) * 1e6) / (HTTP_REQUESTS + Math.min(50, HTTP_REQUESTS)));
        p.p50.push(median(r));
        p.p99.push(percentile(r, 99));
        p.added.push(median(r) - median(d));
      }
    }
    const floorCpu = proxies[0]!.cpu;
    sections.push(`### Egress proxy vs direct https and the Node floor: sequential GETs on one kept-alive connection (${HTTP_REQUESTS} per run)\n\n${markdownTable(
      ['path', 'p50 ms', 'p99 ms', 'added p50 ms', 'proxy CPU µs/request (× floor)'],
      [['direct https', cell(directRuns.p50, undefined, 3), cell(directRuns.p99, undefined, 3), '', ''],
        ...proxies.map((p) => [p.name, cell(p.p50, undefined, 3), cell(p.p99, undefined, 3), cell(p.added, undefined, 3), cell(p.cpu, floorCpu, 0)])],
    )}`);
    httpsAgent.destroy();
    for (const p of proxies) p.agent.destroy();
    await Promise.all([stop(init), stop(floor)]);
    service.close();
  }

  await stop(redis);
  const stunnelVersion = execFileSync('sh', ['-c', 'stunnel -version 2>&1 | grep -E "^stunnel" | head -1'], { encoding: 'utf8' }).trim();
  console.log(`${new Date().toISOString()}: ${cpus().length} CPUs (${cpus()[0]?.model}), node ${process.version}, ${stunnelVersion}; ` +
    `bulk load ${load.name}, ${(BYTES / 2 ** 20).toFixed(0)} MiB per bulk run, ${RUNS} runs (medians [min–max]), ${REQUESTS} PINGs per run; ` +
    `load average before ${LOAD_BEFORE}, after ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n` +
    `command: node bench/proxy.ts ${process.argv.slice(2).join(' ')}\n`);
  console.log(sections.join('\n\n'));
  process.exit(0);
}

const LOAD_BEFORE = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
await main();
