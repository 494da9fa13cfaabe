// The WHOLE init (dist/tee-init.js with a config) as a TLS server in front of a backend, against
// stunnel in the same run (issue 11, "Benchmark"). Usage:
//   node bench/proxy.ts [--bytes 256M] [--runs 3] [--requests 50000] [--clients 50] [--idle 1000]
// Needs stunnel, redis-server, redis-benchmark. `npm run bench:proxy` builds first.
//
//   load ─plain─▶ stunnel client ─TLS 1.3 (AES-128-GCM)─▶ SERVER ─plain─▶ sink / redis
// The client hop is always the same stunnel (PSK or certificates); SERVER is tee-init (its data
// path in worker threads, the default, or `workers: 0`: in the init's own thread) or stunnel.
// One init (one stunnel) serves two listeners: one to the byte sink, one to redis. Permissive
// mode's plaintext path is measured against direct TCP to the same sink / redis.
// Runs are interleaved so that machine drift hits every variant alike.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect as tcpConnect, createServer, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLog } from '../src/log.ts';
import { waitForPort } from '../src/proxy/ready.ts';
import { createPki } from '../test/helpers/pki.ts';
import { freePort } from '../test/helpers/net.ts';
import { bundlePath, cpuSeconds, markdownTable, parseSize, percentile, rssMiB } from './lib.ts';

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: '256M' },
    runs: { type: 'string', default: '3' },
    requests: { type: 'string', default: '50000' },
    clients: { type: 'string', default: '50' },
    idle: { type: 'string', default: '1000' },
  },
});
const BYTES = parseSize(values.bytes);
const RUNS = Number(values.runs);
const REQUESTS = Number(values.requests);
const CLIENTS = Number(values.clients);
const IDLE = Number(values.idle);

const SHARE_A = '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90'; // psk.md test vector
const SHARE_B = 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2';
const KEY_HEX = '2f835009708d32bb71a72a0deda737be2049acc6deae0b1ec7ebd4f25bc16b7c';
const SUITE = 'TLS_AES_128_GCM_SHA256';
const dir = mkdtempSync(join(tmpdir(), 'tee-init-bench-proxy-'));
const pki = createPki(join(dir, 'pki'));
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

function spawnTracked(argv: string[]): ChildProcess {
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
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
/** Counts bytes; `expect(n)` resolves once n more bytes have arrived. Connections stay open until closed by the client. */
async function startSink(): Promise<{ port: number; expect(n: number): Promise<void>; sockets: Set<Socket> }> {
  let got = 0;
  let want = Infinity;
  let done: (() => void) | undefined;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= want) done?.();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    expect(n) {
      got = 0;
      want = n;
      return new Promise((r) => (done = r));
    },
  };
}

// --- servers under test -----------------------------------------------------------------------
type Auth = 'psk' | 'mtls';
interface Server {
  name: string;
  pid: number;
  /** Ports by target. */
  ports: { sink: number; redis: number };
  proc: ChildProcess;
}

async function startInit(auth: Auth | 'permissive', targets: { sink: number; redis: number }, workers?: number): Promise<Server> {
  const ports = { sink: await freePort(), redis: await freePort() };
  const tls = { cert: 'cert', key: 'key', ca: 'ca' };
  const listener = (port: number, to: number) => auth === 'psk'
    ? { type: 'psk', mode: 'server', listen: `127.0.0.1:${port}`, connect: `127.0.0.1:${to}`, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } }, maxConnections: 20_000 }
    : { type: 'tls', mode: auth === 'mtls' ? 'strict' : 'permissive', listen: `127.0.0.1:${port}`, connect: `127.0.0.1:${to}`, tls, maxConnections: 20_000 };
  const config = {
    log: { level: 'error' },
    secrets: {
      share_a: { source: 'file', path: join(dir, 'share_a') }, share_b: { source: 'file', path: join(dir, 'share_b') },
      cert: { source: 'file', path: pki.server.cert }, key: { source: 'file', path: pki.server.key }, ca: { source: 'file', path: pki.ca.cert },
    },
    run: { command: ['sleep', '3600'] },
    listeners: {
      sink: { ...listener(ports.sink, targets.sink), ...(workers === undefined ? {} : { workers }) },
      redis: { ...listener(ports.redis, targets.redis), ...(workers === undefined ? {} : { workers }) },
    },
  };
  const file = join(dir, `init-${ports.sink}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proc = spawnTracked([process.execPath, '--disable-sigusr1', bundlePath(), '--config', file]);
  await waitForPort({ host: '127.0.0.1', port: ports.sink }, quiet, { timeoutMs: 60_000, intervalMs: 20 });
  await waitForPort({ host: '127.0.0.1', port: ports.redis }, quiet, { timeoutMs: 60_000, intervalMs: 20 });
  const name = auth === 'permissive' ? 'tee-init permissive (plaintext)' : `tee-init${workers === 0 ? ', workers: 0' : `, ${workers ?? Math.min(cpus().length, 4)} workers`}`;
  return { name, pid: proc.pid!, ports, proc };
}

function stunnelAuth(auth: Auth, client: boolean): string[] {
  if (auth === 'psk') return [`PSKsecrets = ${PSK_FILE}`, ...(client ? ['PSKidentity = Client1'] : [])];
  return client
    ? [`cert = ${pki.client.cert}`, `key = ${pki.client.key}`, `CAfile = ${pki.ca.cert}`, 'verifyChain = yes', 'checkIP = 127.0.0.1']
    : [`cert = ${pki.server.cert}`, `key = ${pki.server.key}`, `CAfile = ${pki.ca.cert}`, 'verifyChain = yes', 'requireCert = yes'];
}

/** One stunnel process with a service per target. */
async function startStunnel(auth: Auth, client: boolean, targets: { sink: number; redis: number }): Promise<Server> {
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
  return { name: client ? 'stunnel client' : 'stunnel', pid: proc.pid!, ports, proc };
}

// --- loads ------------------------------------------------------------------------------------
const BLOCK = Buffer.alloc(1 << 20, 0x5a);

async function send(port: number, bytes: number): Promise<Socket> {
  const s = tcpConnect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  for (let sent = 0; sent < bytes; sent += BLOCK.length) {
    if (!s.write(sent + BLOCK.length <= bytes ? BLOCK : BLOCK.subarray(0, bytes - sent))) await once(s, 'drain');
  }
  return s;
}

/** MB/s of `conns` connections sending BYTES in all to the sink through `port`, and the server's CPU ms per MiB. */
async function bulk(sink: Awaited<ReturnType<typeof startSink>>, port: number, conns: number, pid: number | undefined): Promise<{ mbps: number; cpuPerMiB: number }> {
  const arrived = sink.expect(BYTES);
  const cpu0 = pid ? cpuSeconds(pid) : 0;
  const t0 = performance.now();
  const sockets = await Promise.all(Array.from({ length: conns }, () => send(port, Math.floor(BYTES / conns))));
  await arrived;
  const s = (performance.now() - t0) / 1000;
  const cpu = pid ? cpuSeconds(pid) - cpu0 : NaN;
  for (const c of sockets) c.destroy();
  return { mbps: BYTES / 1e6 / s, cpuPerMiB: (cpu * 1000) / (BYTES / 2 ** 20) };
}

function ping(port: number): { rps: number; p50: number; p99: number } {
  const out = execFileSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'ping', '-n', String(REQUESTS), '-c', String(CLIENTS), '--csv'], { encoding: 'utf8' });
  const row = out.split('\n').find((l) => l.startsWith('"PING_MBULK"'))!.split(',').map((c) => Number(c.replaceAll('"', '')));
  return { rps: row[1]!, p50: row[4]!, p99: row[6]! };
}

/** RSS of the server process with IDLE connections open through `port` (minus its RSS before). */
async function idleRss(port: number, pid: number, sink: Awaited<ReturnType<typeof startSink>>): Promise<{ rss: number; before: number }> {
  const before = rssMiB(pid);
  const opened: Socket[] = [];
  for (let i = 0; i < IDLE; i++) {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    opened.push(s);
    if (i % 50 === 49) await once(s, 'connect');
  }
  await Promise.all(opened.map((s) => (s.connecting ? once(s, 'connect') : undefined)));
  // Every connection reached the sink: the TLS sessions are up end to end.
  const deadline = Date.now() + 60_000;
  while (sink.sockets.size < IDLE && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const rss = rssMiB(pid);
  for (const s of opened) s.destroy();
  while (sink.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return { rss, before };
}

// --- the run -----------------------------------------------------------------------------------
const median = (v: number[]) => percentile(v, 50);
const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');

interface Row { name: string; bulk1: number[]; bulk16: number[]; cpu1: number[]; cpu16: number[]; rps: number[]; p50: number[]; p99: number[]; rss?: { rss: number; before: number } }

async function main(): Promise<void> {
  const sink = await startSink();
  const redisPort = await freePort();
  const redis = spawnTracked(['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await waitForPort({ host: '127.0.0.1', port: redisPort }, quiet, { timeoutMs: 10_000 });
  const targets = { sink: sink.port, redis: redisPort };
  const sections: string[] = [];

  for (const auth of ['psk', 'mtls'] as const) {
    const servers = [await startStunnel(auth, false, targets), await startInit(auth, targets), await startInit(auth, targets, 0)];
    // One stunnel client per server, so every path has the same client hop.
    const clients = await Promise.all(servers.map((s) => startStunnel(auth, true, s.ports)));
    const rows: Row[] = servers.map((s) => ({ name: s.name, bulk1: [], bulk16: [], cpu1: [], cpu16: [], rps: [], p50: [], p99: [] }));
    for (let run = 0; run < RUNS; run++) {
      for (const [i, s] of servers.entries()) {
        const one = await bulk(sink, clients[i]!.ports.sink, 1, s.pid);
        const many = await bulk(sink, clients[i]!.ports.sink, 16, s.pid);
        const p = ping(clients[i]!.ports.redis);
        rows[i]!.bulk1.push(one.mbps); rows[i]!.cpu1.push(one.cpuPerMiB);
        rows[i]!.bulk16.push(many.mbps); rows[i]!.cpu16.push(many.cpuPerMiB);
        rows[i]!.rps.push(p.rps); rows[i]!.p50.push(p.p50); rows[i]!.p99.push(p.p99);
      }
    }
    for (const [i, s] of servers.entries()) rows[i]!.rss = await idleRss(clients[i]!.ports.sink, s.pid, sink);
    const base = rows[0]!;
    const ratio = (v: number[], b: number[]) => `${f(median(v))} (${f(median(v) / median(b), 2)}×)`;
    sections.push(`### ${auth === 'psk' ? 'TLS-PSK' : 'Certificate mTLS (strict)'}: server hop, same stunnel client\n\n${markdownTable(
      ['server', `1 conn MB/s`, `16 conns MB/s`, 'CPU ms/MiB (1 / 16)', `PING rps (c=${CLIENTS})`, 'p50 / p99 ms', `RSS MiB, ${IDLE} idle (before)`],
      rows.map((r) => [r.name, ratio(r.bulk1, base.bulk1), ratio(r.bulk16, base.bulk16), `${f(median(r.cpu1), 2)} / ${f(median(r.cpu16), 2)}`,
        ratio(r.rps, base.rps), `${f(median(r.p50), 3)} / ${f(median(r.p99), 3)}`, `${f(r.rss!.rss)} (${f(r.rss!.before)})`]),
    )}`);
    await Promise.all([...servers, ...clients].map((s) => stop(s.proc)));
  }

  // Permissive mode's plaintext path against direct TCP.
  const permissive = await startInit('permissive', targets);
  const rows = [{ name: 'direct TCP', port: targets, pid: undefined }, { name: permissive.name, port: permissive.ports, pid: permissive.pid }]
    .map((p) => ({ ...p, bulk1: [] as number[], bulk16: [] as number[], rps: [] as number[], p99: [] as number[] }));
  for (let run = 0; run < RUNS; run++) {
    for (const r of rows) {
      r.bulk1.push((await bulk(sink, r.port.sink, 1, r.pid)).mbps);
      r.bulk16.push((await bulk(sink, r.port.sink, 16, r.pid)).mbps);
      const p = ping(r.port.redis);
      r.rps.push(p.rps);
      r.p99.push(p.p99);
    }
  }
  await stop(permissive.proc);
  const d = rows[0]!;
  const rel = (v: number[], b: number[]) => `${f(median(v))} (${f(median(v) / median(b), 2)}×)`;
  sections.push(`### Permissive mode, plaintext client, vs direct TCP\n\n${markdownTable(['path', '1 conn MB/s', '16 conns MB/s', 'PING rps', 'p99 ms'],
    rows.map((r) => [r.name, rel(r.bulk1, d.bulk1), rel(r.bulk16, d.bulk16), rel(r.rps, d.rps), f(median(r.p99), 3)]))}`);

  await stop(redis);
  const stunnelVersion = execFileSync('sh', ['-c', 'stunnel -version 2>&1 | grep -E "^stunnel" | head -1'], { encoding: 'utf8' }).trim();
  console.log(`${new Date().toISOString()}: ${cpus().length} CPUs (${cpus()[0]?.model}), node ${process.version}, ${stunnelVersion}; ` +
    `${(BYTES / 2 ** 20).toFixed(0)} MiB per bulk run, ${RUNS} runs (medians), ${REQUESTS} PINGs per run\n`);
  console.log(sections.join('\n\n'));
  process.exit(0);
}

await main();
