// The tunnel pair (issue 13, "Benchmark") against direct TCP and the PSK listener, in one run.
// Usage: node bench/tunnel.ts [--bytes 256M] [--runs 3] [--connections 300] [--parallel 16]
//
// Every path but "direct" has two hops, each its own process, so plain-TCP load drives it:
//   load ─plain─▶ [client hop] ─(PSK TLS | HTTP/2 stream [+ inner mTLS])─▶ [server hop] ─plain─▶ sink
// Each hop is the whole init (dist/tee-init.js with a config whose one listener is the hop:
// psk, or tunnel client/server, beside a placeholder program). Runs are interleaved so
// machine drift hits all paths alike; CPU time per unit of work is read from /proc.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect as tcpConnect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/net.ts';
import { createPki } from '../test/helpers/pki.ts';
import { markdownTable, percentile, root } from './lib.ts';

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: '256M' },
    runs: { type: 'string', default: '3' },
    connections: { type: 'string', default: '300' },
    parallel: { type: 'string', default: '16' },
  },
});
const BYTES = parseSize(values.bytes);
const RUNS = Number(values.runs);
const CONNECTIONS = Number(values.connections);
const PARALLEL = Number(values.parallel);
const KEY_HEX = '2f835009708d32bb71a72a0deda737be2049acc6deae0b1ec7ebd4f25bc16b7c'; // psk.md test vector: not a secret
const node = process.execPath;
const dir = mkdtempSync(join(tmpdir(), 'tee-init-bench-tunnel-'));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG])?$/i.exec(s);
  if (!m) throw new Error(`--bytes: ${s} is not a size like 256M or 1G`);
  return Math.round(Number(m[1]) * 1024 ** ({ K: 1, M: 2, G: 3 }[(m[2] ?? '').toUpperCase() as 'K'] ?? 0));
}

const pki = createPki(join(dir, 'pki'));
const SECRETS = { ca: pki.ca.cert, server_cert: pki.server.cert, server_key: pki.server.key, client_cert: pki.client.cert, client_key: pki.client.key };
// Two collaborators' shares for the PSK pair (psk.md test vectors: not secrets).
writeFileSync(join(dir, 'share_a'), `${KEY_HEX}\n`);
writeFileSync(join(dir, 'share_b'), `${KEY_HEX.split('').reverse().join('')}\n`);
const SHARES = { share_a: join(dir, 'share_a'), share_b: join(dir, 'share_b') };

interface Hop { pid: number; port: number; proc: ChildProcess }

/**
 * One hop is the whole init, as users run it: dist/tee-init.js with a config whose one listener
 * is the hop, beside a placeholder program (sleep). Secrets are files (source: file).
 */
async function startHop(listener: Record<string, unknown>, secrets: Record<string, string>): Promise<Hop> {
  const port = await freePort();
  const config = join(dir, `hop-${port}.json`);
  writeFileSync(config, JSON.stringify({
    log: { level: 'warn' },
    secrets: Object.fromEntries(Object.entries(secrets).map(([name, path]) => [name, { source: 'file', path }])),
    listeners: { hop: { ...listener, listen: `127.0.0.1:${port}` } },
    run: { command: ['sleep', '3600'] },
  }));
  const proc = spawn(node, ['--disable-sigusr1', join(root, 'dist', 'tee-init.js'), '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  // Listening once a TCP connect succeeds (the init logs at warn: nothing to wait for there).
  let seen = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (seen += c));
  const exited = new Promise<never>((_, reject) => proc.once('exit', (code) => reject(new Error(`tee-init exited ${code} before listening: ${seen}`))));
  for (;;) {
    const up = await Promise.race([exited, new Promise<boolean>((resolve) => {
      const s = tcpConnect(port, '127.0.0.1', () => (s.destroy(), resolve(true))).once('error', () => resolve(false));
    })]);
    if (up) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid: proc.pid!, port, proc };
}

interface Path { name: string; port: number; hops: Hop[] }

type Kind = 'psk' | 'h2c' | 'h2c+mtls' | 'tls+mtls';
const PATHS: [string, Kind | null][] = [
  ['direct TCP (no hop)', null],
  ['PSK pair (TLS-PSK between the hops)', 'psk'],
  ['tunnel pair, h2c', 'h2c'],
  ['tunnel pair, h2c + inner mTLS', 'h2c+mtls'],
  ['tunnel pair, TLS + inner mTLS', 'tls+mtls'],
];

async function startPath(name: string, kind: Kind | null, sinkPort: number): Promise<Path> {
  if (kind === null) return { name, port: sinkPort, hops: [] };
  const upstream = `127.0.0.1:${sinkPort}`;
  if (kind === 'psk') {
    const common = { type: 'psk', identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } }, maxConnections: 20_000 };
    const server = await startHop({ ...common, mode: 'server', connect: upstream }, SHARES);
    const client = await startHop({ ...common, mode: 'client', connect: `127.0.0.1:${server.port}` }, SHARES);
    return { name, port: client.port, hops: [client, server] };
  }
  const mtls = kind !== 'h2c';
  const tls = kind === 'tls+mtls';
  const server = await startHop({
    type: 'tunnel', mode: 'server', connect: upstream, maxConnections: 20_000, maxStreams: 1000,
    ...(tls ? { tls: { cert: 'server_cert', key: 'server_key' } } : { h2c: true }),
    ...(mtls ? { inner: { tls: { cert: 'server_cert', key: 'server_key', ca: 'ca' } } } : {}),
  }, SECRETS);
  const client = await startHop({
    type: 'tunnel', mode: 'client', maxConnections: 20_000,
    url: `${tls ? 'https://localhost' : 'http://127.0.0.1'}:${server.port}/`,
    ...(tls ? { tls: { ca: 'ca' } } : {}),
    ...(mtls ? { inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', serverName: 'localhost' } } } : {}),
  }, SECRETS);
  return { name, port: client.port, hops: [client, server] };
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}
async function withCpu<T>(path: Path, fn: () => Promise<T>): Promise<{ value: T; cpu: number[] }> {
  const before = path.hops.map((h) => cpuSeconds(h.pid));
  const value = await fn();
  return { value, cpu: path.hops.map((h, i) => cpuSeconds(h.pid) - before[i]!) };
}
const median = (v: number[]) => percentile(v, 50);
const fmt = (n: number, d = 1) => n.toFixed(d);
const cpuCell = (runs: number[][], scale: number) =>
  runs.length && runs[0]!.length ? runs[0]!.map((_, hop) => fmt(median(runs.map((r) => r[hop]!)) * scale, 2)).join(' / ') : '–';

// The sink: counts what a connection sends and answers with the count once it half-closes;
// a first byte "e" makes it an echo instead (connection set-up).
const sink = createServer({ allowHalfOpen: true }, (s) => {
  let n = 0;
  let echo: boolean | undefined;
  s.on('error', () => {});
  s.on('data', (d: Buffer) => {
    echo ??= d[0] === 0x65;
    if (echo) s.write(d);
    else n += d.length;
  });
  s.on('end', () => (echo ? s.end() : s.end(String(n))));
});
sink.listen(0, '127.0.0.1');
await once(sink, 'listening');
const sinkPort = (sink.address() as AddressInfo).port;

const chunk = Buffer.alloc(1 << 20, 0x5a);
/** Sends `bytes` on one connection, half-closes, and checks the count the sink answers. */
async function send(port: number, bytes: number): Promise<void> {
  const s = tcpConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(s, 'connect');
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!s.write(sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent))) await once(s, 'drain');
  }
  s.end();
  let answer = '';
  s.setEncoding('utf8').on('data', (c: string) => (answer += c));
  await once(s, 'end');
  s.destroy();
  if (Number(answer) !== bytes) throw new Error(`bulk: ${answer} of ${bytes} bytes arrived`);
}
async function bulk(port: number, parallel: number): Promise<number> {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, () => send(port, Math.floor(BYTES / parallel))));
  return BYTES / 2 ** 20 / ((performance.now() - t0) / 1000);
}
/** Sequential connections: connect, one byte there and back, close. Returns ms per connection. */
async function setup(port: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const t0 = performance.now();
    const s = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
    await once(s, 'connect');
    s.write('e');
    await once(s, 'data');
    times.push(performance.now() - t0);
    s.destroy();
  }
  return times;
}

const paths: Path[] = [];
for (const [name, kind] of PATHS) paths.push(await startPath(name, kind, sinkPort));
for (const p of paths) {
  await bulk(p.port, 1); // warm-up: sessions open, JIT warm
  await setup(p.port);
}

const results = new Map<string, { one: number[]; many: number[]; setup: number[]; cpuOne: number[][]; cpuSetup: number[][] }>();
for (const p of paths) results.set(p.name, { one: [], many: [], setup: [], cpuOne: [], cpuSetup: [] });
for (let r = 0; r < RUNS; r++) {
  for (const p of paths) {
    const res = results.get(p.name)!;
    const one = await withCpu(p, () => bulk(p.port, 1));
    res.one.push(one.value);
    res.cpuOne.push(one.cpu);
    res.many.push(await bulk(p.port, PARALLEL));
    const st = await withCpu(p, () => setup(p.port));
    res.setup.push(...st.value);
    res.cpuSetup.push(st.cpu);
  }
}
for (const p of paths) for (const h of p.hops) h.proc.kill('SIGTERM');
sink.close();

const direct = results.get(PATHS[0]![0])!;
const psk = results.get(PATHS[1]![0])!;
console.log(`\n## Bulk throughput, ${values.bytes} one way (${RUNS} runs, interleaved; median MiB/s)\n`);
console.log(markdownTable(
  ['path', '1 connection', 'ratio to direct', 'ratio to PSK pair', `${PARALLEL} connections at once`, 'ratio to PSK pair', 'CPU ms per MiB (1 conn), client / server hop'],
  paths.map((p) => {
    const r = results.get(p.name)!;
    return [p.name, fmt(median(r.one)), fmt(median(r.one) / median(direct.one), 2), fmt(median(r.one) / median(psk.one), 2),
      fmt(median(r.many)), fmt(median(r.many) / median(psk.many), 2), cpuCell(r.cpuOne, 1000 / (BYTES / 2 ** 20))];
  }),
));
console.log(`\n## Connection set-up: connect, 1 byte to the program and back (${CONNECTIONS} sequential connections × ${RUNS} runs)\n`);
console.log('A tunnel reuses its HTTP/2 connection: set-up is one stream (plus the inner mTLS handshake where configured).\n');
console.log(markdownTable(
  ['path', 'p50 ms', 'p99 ms', 'p50 ratio to direct', 'p50 ratio to PSK pair', 'CPU µs per connection, client / server hop'],
  paths.map((p) => {
    const r = results.get(p.name)!;
    return [p.name, fmt(median(r.setup), 3), fmt(percentile(r.setup, 99), 3), fmt(median(r.setup) / median(direct.setup), 2),
      fmt(median(r.setup) / median(psk.setup), 2), cpuCell(r.cpuSetup, 1e6 / CONNECTIONS)];
  }),
));
console.log(`\nmachine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version} (OpenSSL ${process.versions.openssl}), ${new Date().toISOString()}`);
console.log(`command: node bench/tunnel.ts ${process.argv.slice(2).join(' ')}`);
process.exit(0);
