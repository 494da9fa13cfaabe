// The TLS-PSK proxy against stunnel, in the same run (issue 5, "Benchmark").
// Usage: node bench/psk.ts [--bytes 256M] [--runs 3] [--requests 100000] [--clients 50]
//                          [--connections 10000] [--idle 1000] [--only bulk,latency,handshakes,memory]
// Needs stunnel (Debian stunnel4), redis-server and redis-benchmark on PATH.
//
// Every path has two PSK hops, so that plain-TCP tools can drive it and both modes are measured:
//   load ─plain─▶ [client hop] ─TLS-PSK─▶ [server hop] ─plain─▶ sink / redis
// Each hop is tee-init (bench/psk-runner.ts, one process per hop) or stunnel (one process per
// hop), both TLS 1.3 with TLS_AES_128_GCM_SHA256. "direct" (no hop) is the floor; the mixed pairs
// show which side any difference comes from. Runs are interleaved so machine drift hits all alike.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect as tcpConnect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { createLog } from '../src/lib/log.ts';
import { waitForPort } from '../src/proxy/types/psk/index.ts';
import { cpuSeconds, markdownTable, parseSize, percentile, root } from './lib.ts';
import { freePort } from '../test/helpers/net.ts';

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: '256M' },
    runs: { type: 'string', default: '3' },
    requests: { type: 'string', default: '100000' },
    clients: { type: 'string', default: '50' },
    connections: { type: 'string', default: '10000' },
    idle: { type: 'string', default: '1000' },
    only: { type: 'string', default: 'bulk,latency,handshakes,memory' },
  },
});
const ONLY = new Set(values.only.split(','));
const BYTES = parseSize(values.bytes);
const RUNS = Number(values.runs);
const REQUESTS = Number(values.requests);
const CLIENTS = Number(values.clients);
const CONNECTIONS = Number(values.connections);
const IDLE = Number(values.idle);

const IDENTITY = 'Client1';
const KEY_HEX = '2f835009708d32bb71a72a0deda737be2049acc6deae0b1ec7ebd4f25bc16b7c'; // psk.md test vector: not a secret
const SUITE = 'TLS_AES_128_GCM_SHA256';
const node = process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'tee-init-bench-psk-'));
// The init runs as a bundle (dist/tee-init.js), not as .ts through type stripping, which alone
// adds ~30 MB of RSS: bundle the runner the same way (esbuild, as scripts/build.mjs).
const runner = join(dir, 'psk-runner.mjs');
await build({
  entryPoints: [join(root, 'bench', 'psk-runner.ts')], bundle: true, platform: 'node', format: 'esm', outfile: runner, logLevel: 'warning',
  banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
});
const children = new Set<ChildProcess>();
const quiet = createLog({ level: 'error' });
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a process and resolves once a line on `stream` matches. */
async function startProcess(argv: string[], stream: 'stdout' | 'stderr', ready: RegExp, input?: string): Promise<{ proc: ChildProcess; match: RegExpExecArray }> {
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  if (input !== undefined) proc.stdin!.end(input);
  let seen = '';
  const out = proc[stream]!;
  out.setEncoding('utf8');
  const other = stream === 'stdout' ? proc.stderr! : proc.stdout!;
  other.resume();
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const onData = (c: string) => {
      seen += c;
      const m = ready.exec(seen);
      if (m) {
        out.off('data', onData);
        out.resume();
        resolve(m);
      }
    };
    out.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code} before it was ready:\n${seen}`)));
  });
  return { proc, match };
}

interface Hop {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

type Impl = 'tee-init' | 'stunnel';

async function startHop(impl: Impl, mode: 'server' | 'client', connectPort: number): Promise<Hop> {
  let proc: ChildProcess;
  let port: number;
  if (impl === 'tee-init') {
    const input = JSON.stringify({ mode, listen: '127.0.0.1:0', connect: `127.0.0.1:${connectPort}`, identity: IDENTITY, keyHex: KEY_HEX });
    const r = await startProcess([node, runner], 'stdout', /listening (\d+)\n/, input);
    proc = r.proc;
    port = Number(r.match[1]);
  } else {
    port = await freePort();
    const secrets = join(dir, `psk-${port}.txt`);
    writeFileSync(secrets, `${IDENTITY}:${KEY_HEX}\n`, { mode: 0o600 });
    const conf = join(dir, `stunnel-${port}.conf`);
    writeFileSync(conf, [
      'foreground = yes', 'pid =', 'debug = 3', 'syslog = no',
      '[psk]', `client = ${mode === 'client' ? 'yes' : 'no'}`, `accept = 127.0.0.1:${port}`, `connect = 127.0.0.1:${connectPort}`,
      `PSKsecrets = ${secrets}`, ...(mode === 'client' ? [`PSKidentity = ${IDENTITY}`] : []),
      'sslVersionMin = TLSv1.3', `ciphersuites = ${SUITE}`, '',
    ].join('\n'));
    // debug = 3 (errors only) keeps per-connection logging out of the measurement, and with it
    // the "Configuration successful" line: wait for the port instead.
    proc = spawn('stunnel', [conf], { stdio: 'ignore' });
    children.add(proc);
    await waitForPort({ host: '127.0.0.1', port }, quiet, { timeoutMs: 10_000, intervalMs: 10 });
  }
  return {
    pid: proc.pid!,
    port,
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    },
  };
}

interface Path {
  name: string;
  port: number;
  hops: Hop[];
}

// [client hop, server hop]; null = direct.
const PAIRS: [string, [Impl, Impl] | null][] = [
  ['direct (no proxy)', null],
  ['tee-init → tee-init', ['tee-init', 'tee-init']],
  ['stunnel → stunnel', ['stunnel', 'stunnel']],
  ['stunnel → tee-init (tee-init as server)', ['stunnel', 'tee-init']],
  ['tee-init → stunnel (tee-init as client)', ['tee-init', 'stunnel']],
];

async function startPaths(backendPort: number, pairs = PAIRS): Promise<Path[]> {
  const paths: Path[] = [];
  for (const [name, pair] of pairs) {
    if (!pair) {
      paths.push({ name, port: backendPort, hops: [] });
      continue;
    }
    const server = await startHop(pair[1], 'server', backendPort);
    const client = await startHop(pair[0], 'client', server.port);
    paths.push({ name, port: client.port, hops: [client, server] });
  }
  return paths;
}

async function stopPaths(paths: Path[]): Promise<void> {
  await Promise.all(paths.flatMap((p) => p.hops.map((h) => h.stop())));
}

/** Runs `fn` and returns its result with the CPU seconds each hop of `path` used meanwhile. */
async function withCpu<T>(path: Path, fn: () => Promise<T> | T): Promise<{ value: T; cpu: number[] }> {
  const before = path.hops.map((h) => cpuSeconds(h.pid));
  const value = await fn();
  return { value, cpu: path.hops.map((h, i) => cpuSeconds(h.pid) - before[i]!) };
}
// On a small shared machine wall-clock rates are noisy (all processes compete for the same
// cores); CPU time per unit of work is the steadier measure of each hop's own cost.
/** "client hop / server hop" CPU per unit of work (median over runs), e.g. ms per MiB. */
function cpuCell(runs: number[][], scale: number): string {
  if (!runs.length || !runs[0]!.length) return '–';
  return runs[0]!.map((_, hop) => fmt(median(runs.map((r) => r[hop]!)) * scale, 2)).join(' / ');
}

const median = (v: number[]) => percentile(v, 50);
const fmt = (n: number, d = 1) => n.toFixed(d);

// --- 1. Bulk throughput -------------------------------------------------------------------------
async function bulk(): Promise<void> {
  let onDone: ((n: number) => void) | undefined;
  const sink = createServer((s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => {
      s.end();
      onDone?.(n);
    });
  });
  sink.listen(0, '127.0.0.1');
  await once(sink, 'listening');
  const sinkPort = (sink.address() as AddressInfo).port;
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const transfer = async (port: number): Promise<number> => {
    const done = new Promise<number>((r) => (onDone = r));
    const t0 = performance.now();
    const s = tcpConnect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    for (let sent = 0; sent < BYTES; sent += chunk.length) {
      if (!s.write(sent + chunk.length <= BYTES ? chunk : chunk.subarray(0, BYTES - sent))) await once(s, 'drain');
    }
    s.end();
    const got = await done;
    const ms = performance.now() - t0;
    s.destroy();
    if (got !== BYTES) throw new Error(`bulk: ${got} of ${BYTES} bytes arrived`);
    return (BYTES / (1024 * 1024)) / (ms / 1000);
  };
  // Each path's hops connect to the sink; the direct path is the sink itself.
  const live = await startPaths(sinkPort);
  const rates: Record<string, number[]> = Object.fromEntries(live.map((p) => [p.name, []]));
  const cpu: Record<string, number[][]> = Object.fromEntries(live.map((p) => [p.name, []]));
  for (const p of live) await transfer(p.port); // warm-up
  for (let r = 0; r < RUNS; r++) {
    for (const p of live) {
      const { value, cpu: c } = await withCpu(p, () => transfer(p.port));
      rates[p.name]!.push(value);
      cpu[p.name]!.push(c);
    }
  }
  await stopPaths(live);
  sink.close();
  const base = median(rates['stunnel → stunnel']!);
  console.log(`\n## Bulk throughput, ${values.bytes} one way (${RUNS} runs each, interleaved; median)\n`);
  console.log(markdownTable(['path', 'MiB/s (median)', 'min', 'max', 'ratio to stunnel → stunnel', 'CPU ms per MiB, client hop / server hop'],
    live.map((p) => {
      const v = rates[p.name]!;
      return [p.name, fmt(median(v)), fmt(Math.min(...v)), fmt(Math.max(...v)), (median(v) / base).toFixed(2), cpuCell(cpu[p.name]!, 1000 / (BYTES / 2 ** 20))];
    })));
}

// --- 2. Request/response latency with redis-benchmark ------------------------------------------
interface BenchRow { test: string; rps: number; p50: number; p99: number }

function redisBenchmark(port: number, args: string[]): BenchRow[] {
  const out = execFileSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '--csv', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return out.trim().split('\n').slice(1).map((line) => {
    const f = line.split(',').map((x) => x.replaceAll('"', ''));
    return { test: f[0]!, rps: Number(f[1]), p50: Number(f[4]), p99: Number(f[6]) };
  });
}

async function latency(paths: Path[]): Promise<void> {
  const cases: [string, string[]][] = [
    [`${CLIENTS} connections`, ['-t', 'ping_inline,set,get', '-n', String(REQUESTS), '-c', String(CLIENTS)]],
    ['1 connection', ['-t', 'ping_inline,set,get', '-n', String(Math.max(1000, Math.floor(REQUESTS / 5))), '-c', '1']],
  ];
  for (const [label, args] of cases) {
    const results: Record<string, BenchRow[][]> = Object.fromEntries(paths.map((p) => [p.name, []]));
    const cpu: Record<string, number[][]> = Object.fromEntries(paths.map((p) => [p.name, []]));
    const n = Number(args[args.indexOf('-n') + 1]) * 3; // three tests
    for (const p of paths) redisBenchmark(p.port, [...args.slice(0, 2), '-n', '2000', '-c', args[args.length - 1]!]); // warm-up
    for (let r = 0; r < RUNS; r++) {
      for (const p of paths) {
        const { value, cpu: c } = await withCpu(p, () => redisBenchmark(p.port, args));
        results[p.name]!.push(value);
        cpu[p.name]!.push(c);
      }
    }
    console.log(`\n## redis-benchmark, ${label} (${args.join(' ')}; ${RUNS} runs, median of each column)\n`);
    const rows: string[][] = [];
    const tests = results[paths[0]!.name]![0]!.map((row) => row.test).filter((t) => t !== 'PING_MBULK');
    for (const test of tests) {
      const stun = results['stunnel → stunnel']!.map((run) => run.find((x) => x.test === test)!);
      for (const p of paths) {
        const runs = results[p.name]!.map((run) => run.find((x) => x.test === test)!);
        const p99 = median(runs.map((x) => x.p99));
        rows.push([test, p.name, fmt(median(runs.map((x) => x.rps)), 0), fmt(median(runs.map((x) => x.p50)), 3), fmt(p99, 3),
          (p99 / median(stun.map((x) => x.p99))).toFixed(2)]);
      }
    }
    console.log(markdownTable(['test', 'path', 'requests/s', 'p50 ms', 'p99 ms', 'p99 ratio to stunnel → stunnel'], rows));
    console.log(`\nCPU µs per request (all three tests), client hop / server hop:\n`);
    console.log(markdownTable(['path', 'CPU µs per request'], paths.filter((p) => p.hops.length).map((p) => [p.name, cpuCell(cpu[p.name]!, 1e6 / n)])));
  }
}

// --- 3. Handshakes per second, and file descriptors after many connections ---------------------
function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function settledFds(pid: number, baseline: number): Promise<number> {
  // Connections close asynchronously after the client's last one; give them up to 5 s to settle.
  const deadline = Date.now() + 5000;
  let n = fds(pid);
  while (n > baseline && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    n = fds(pid);
  }
  return n;
}

async function handshakes(paths: Path[]): Promise<void> {
  const rows: string[][] = [];
  for (const p of paths) {
    const before = p.hops.map((h) => fds(h.pid));
    let peak = [...before];
    const sampler = setInterval(() => (peak = p.hops.map((h, i) => Math.max(peak[i]!, fds(h.pid)))), 20);
    // -k 0: a new connection (a new TLS handshake on each hop) for every request.
    const cpu0 = p.hops.map((h) => cpuSeconds(h.pid));
    const bench = spawn('redis-benchmark', ['-h', '127.0.0.1', '-p', String(p.port), '--csv', '-k', '0', '-n', String(CONNECTIONS), '-c', '16', 'PING'],
      { stdio: ['ignore', 'pipe', 'ignore'] }); // stderr: its keepalive warning
    let out = '';
    bench.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    await once(bench, 'exit');
    clearInterval(sampler);
    const cpu = p.hops.map((h, i) => cpuSeconds(h.pid) - cpu0[i]!);
    const rps = Number(out.trim().split('\n')[1]!.split(',')[1]!.replaceAll('"', ''));
    const after = await Promise.all(p.hops.map((h, i) => settledFds(h.pid, before[i]!)));
    const fd = (arr: number[]) => (arr.length ? arr.join(' / ') : '–');
    rows.push([p.name, fmt(rps, 0), cpuCell([cpu], 1e6 / CONNECTIONS), fd(before), fd(peak), fd(after), p.hops.length && after.some((a, i) => a > before[i]!) ? 'yes' : 'no']);
  }
  console.log(`\n## New connections per second (redis-benchmark -k 0 -c 16 -n ${CONNECTIONS} PING: one TLS handshake per request on each hop), and open fds\n`);
  console.log('Columns with two numbers are client hop / server hop; fds are read from /proc/PID/fd.\n');
  console.log(markdownTable(['path', 'connections/s', 'CPU µs per connection, client / server hop', 'fds before', 'fds peak', `fds after ${CONNECTIONS} connections`, 'leak'], rows));
}

// --- 4. RSS at N idle connections (server hop only) --------------------------------------------
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

async function idleRss(redisPort: number): Promise<void> {
  const rows: string[][] = [];
  for (const impl of ['tee-init', 'stunnel'] as const) {
    const hop = await startHop(impl, 'server', redisPort);
    const idle0 = rssMb(hop.pid);
    const sockets: TLSSocket[] = [];
    const key = Buffer.from(KEY_HEX, 'hex');
    for (let i = 0; i < IDLE; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, IDLE - i) }, async () => {
        const s = tlsConnect({ host: '127.0.0.1', port: hop.port, minVersion: 'TLSv1.3', ciphers: SUITE, pskCallback: () => ({ psk: key, identity: IDENTITY }), checkServerIdentity: () => undefined });
        sockets.push(s);
        await once(s, 'secureConnect');
        // One round trip, so the backend connection is certainly up.
        s.write('PING\r\n');
        await once(s, 'data');
      }));
    }
    const withIdle = rssMb(hop.pid);
    const clients = /connected_clients:(\d+)/.exec(execFileSync('redis-cli', ['-p', String(redisPort), 'INFO', 'clients'], { encoding: 'utf8' }))![1];
    for (const s of sockets) s.destroy();
    await hop.stop();
    rows.push([impl, fmt(idle0), fmt(withIdle), fmt(((withIdle - idle0) * 1024) / IDLE, 1), String(Number(clients) - 1)]);
  }
  console.log(`\n## Memory of one server-mode proxy process with ${IDLE} idle TLS-PSK connections (each piped to redis)\n`);
  console.log(markdownTable(['proxy', 'RSS before MB', `RSS with ${IDLE} idle MB`, 'KiB per connection', 'redis clients seen'], rows));
}

// --- main ---------------------------------------------------------------------------------------
for (const tool of ['stunnel', 'redis-server', 'redis-benchmark', 'redis-cli']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is not installed (apt-get install stunnel4 redis-server redis-tools)`);
  }
}
const stunnelVersion = execFileSync('sh', ['-c', 'stunnel -version 2>&1 | grep -E "^stunnel|OpenSSL" | head -3'], { encoding: 'utf8' }).trim().replaceAll('\n', '; ');

if (ONLY.has('bulk')) await bulk();

const redisPort = await freePort();
await startProcess(['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', String(IDLE + 1000)],
  'stdout', /Ready to accept connections/);
if (ONLY.has('latency') || ONLY.has('handshakes')) {
  const paths = await startPaths(redisPort);
  if (ONLY.has('latency')) await latency(paths);
  if (ONLY.has('handshakes')) await handshakes(paths);
  await stopPaths(paths);
}
if (ONLY.has('memory')) await idleRss(redisPort);

console.log(`\nmachine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version} (OpenSSL ${process.versions.openssl}), ${stunnelVersion}, ${new Date().toISOString()}`);
console.log(`command: node bench/psk.ts ${process.argv.slice(2).join(' ')}`);
process.exit(0);

