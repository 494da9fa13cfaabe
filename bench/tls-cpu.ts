// CPU per MiB of a TLS server hop, A/B (issue 19): a lighter sibling of bench/proxy.ts for
// comparing variants of the init (builds, node flags, workers) against the floor, interleaved.
// Usage:
//   node bench/tls-cpu.ts [--auth psk,mtls] [--bytes 256M] [--runs 5] [--conns 1] [--trace-gc]
//     [--variant 'NAME;floor'] [--variant 'NAME;dist=DIR;workers=0;args=--flag --flag;env=K=V'] ...
// A variant is the floor (bench/floor.ts) or the init from DIR/tee-init.js (default: dist/),
// with `args=` replacing its start-line node flags (`args+=` adding to them), `workers=` set on
// both listeners, `env=K=V` added to its environment. Default variants: the floor, the init
// (default workers) twice (the second tells what an A/A difference looks like), `workers: 0`.
// Each run visits every variant once, in an order rotated per run, so drift spreads evenly.
//
// CPU is read from /proc/PID/task/*/schedstat (nanoseconds of run time per thread, summed over
// the server's threads), not /proc/PID/stat's clock ticks: 256 MiB at ~1 ms/MiB is ~25 ticks
// of 10 ms, a 4% step. (A thread that exits during a run would be missed: none does on a TLS
// server hop; the tick count, printed beside, is process-wide.) --trace-gc counts the servers'
// scavenges and mark-compacts per run (all isolates: the init's and its workers'); --gc-log FILE
// keeps their trace lines. --threads adds CPU ms per MiB by thread name (main, the workers, V8's
// GC helpers, libuv's pool).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createLog } from '../src/lib/log.ts';
import { waitForPort } from '../src/proxy/ready.ts';
import { createPki } from '../test/helpers/pki.ts';
import { freePort } from '../test/helpers/net.ts';
import { startNodeLoad } from './load.ts';
import { cpuSeconds, markdownTable, parseSize, percentile, root, startLineNodeArgs } from './lib.ts';

const { values } = parseArgs({
  options: {
    auth: { type: 'string', default: 'psk,mtls' },
    bytes: { type: 'string', default: '256M' },
    runs: { type: 'string', default: '5' },
    conns: { type: 'string', default: '1' },
    'trace-gc': { type: 'boolean', default: false },
    'gc-log': { type: 'string' },
    threads: { type: 'boolean', default: false },
    variant: { type: 'string', multiple: true },
  },
});
const BYTES = parseSize(values.bytes);
const RUNS = Number(values.runs);
const CONNS = Number(values.conns);
const GC_LOG = values['gc-log'];
const TRACE_GC = values['trace-gc'] || GC_LOG !== undefined;

interface Variant { name: string; floor: boolean; dist: string; args?: string[]; addArgs: string[]; workers?: number; env: Record<string, string> }
function parseVariant(spec: string): Variant {
  const [name, ...parts] = spec.split(';');
  const v: Variant = { name: name!, floor: false, dist: join(root, 'dist'), addArgs: [], env: {} };
  for (const p of parts) {
    const m = /^(\w+)(\+?=)?(.*)$/.exec(p)!;
    const [, key, , value = ''] = m;
    const words = value.split(/\s+/).filter(Boolean);
    if (key === 'floor') v.floor = true;
    else if (key === 'dist') v.dist = resolve(value);
    else if (key === 'args' && m[2] === '+=') v.addArgs = words;
    else if (key === 'args') v.args = words;
    else if (key === 'workers') v.workers = Number(value);
    else if (key === 'env') Object.assign(v.env, Object.fromEntries([value.split(/=(.*)/s).slice(0, 2) as [string, string]]));
    else throw new Error(`--variant ${spec}: unknown part ${p}`);
  }
  return v;
}
const VARIANTS = (values.variant ?? ['floor;floor', 'default', 'default again', 'workers: 0;workers=0']).map(parseVariant);

const KEY_HEX = '2f835009708d32bb71a72a0deda737be2049acc6deae0b1ec7ebd4f25bc16b7c';
const dir = mkdtempSync(join(tmpdir(), 'tee-init-bench-tls-cpu-'));
const pki = createPki(join(dir, 'pki'), { serverSans: ['DNS:localhost', 'IP:127.0.0.1'] });
const PSK_FILE = join(dir, 'psk.txt');
writeFileSync(PSK_FILE, `Client1:${KEY_HEX}\n`, { mode: 0o600 });
const SHARES = { share_a: '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90', share_b: 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2' };
for (const [k, v] of Object.entries(SHARES)) writeFileSync(join(dir, k), v);
const quiet = createLog({ level: 'error' });
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const stopping = new WeakSet<ChildProcess>();
/** Counts the GC lines a server prints with --trace-gc. */
interface Proc { proc: ChildProcess; gc: { scavenge: number; markCompact: number } }
function start(argv: string[], env: Record<string, string> = {}, name = ''): Proc {
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const gc = { scavenge: 0, markCompact: 0 };
  let tail = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
    const lines = (tail + c).split('\n');
    tail = lines.pop()!;
    for (const l of lines) {
      if (GC_LOG) appendFileSync(GC_LOG, `${name}\t${l}\n`);
      if (l.includes('Scavenge')) gc.scavenge++;
      else if (l.includes('Mark-Compact')) gc.markCompact++;
    }
  });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4000)));
  proc.once('exit', (code, signal) => {
    if (code && signal === null && !stopping.has(proc)) console.error(`${argv.join(' ').slice(0, 200)} exited ${code}:\n${err}`);
  });
  return { proc, gc };
}

/** Nanoseconds of CPU of every thread of `pid` (/proc/PID/task/TID/schedstat, first field), by thread name. */
function cpuByThread(pid: number): Map<string, number> {
  const by = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const comm = tid === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      by.set(comm, (by.get(comm) ?? 0) + Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch { /* the thread ended between readdir and read */ }
  }
  return by;
}
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

type Auth = 'psk' | 'mtls';
async function startServer(v: Variant, auth: Auth, sinkPort: number): Promise<{ port: number; p: Proc }> {
  const port = await freePort();
  const gcArgs = TRACE_GC ? ['--trace-gc'] : [];
  let p: Proc;
  if (v.floor) {
    const creds = auth === 'psk' ? ['--psk', KEY_HEX] : ['--cert', pki.server.cert, '--key', pki.server.key, '--ca', pki.ca.cert];
    p = start([process.execPath, ...gcArgs, ...(v.args ?? []), ...v.addArgs, join(root, 'bench', 'floor.ts'), '--auth', auth, '--listen', String(port), '--connect', String(sinkPort), ...creds], v.env, v.name);
  } else {
    const bundle = join(v.dist, 'tee-init.js');
    const listener = {
      ...(auth === 'psk'
        ? { type: 'psk', mode: 'server', identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } }
        : { type: 'tls', mode: 'strict', tls: { cert: 'cert', key: 'key', ca: 'ca' } }),
      listen: `127.0.0.1:${port}`, connect: `127.0.0.1:${sinkPort}`, ...(v.workers === undefined ? {} : { workers: v.workers }),
    };
    const secrets = { share_a: join(dir, 'share_a'), share_b: join(dir, 'share_b'), cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert };
    const config = { log: { level: 'error' }, secrets: Object.fromEntries(Object.entries(secrets).map(([n, path]) => [n, { source: 'file', path }])), run: { command: ['sleep', '3600'] }, listeners: { sink: listener } };
    const file = join(dir, `init-${port}.json`);
    writeFileSync(file, JSON.stringify(config));
    p = start([process.execPath, '--disable-sigusr1', ...gcArgs, ...(v.args ?? startLineNodeArgs(bundle)), ...v.addArgs, bundle, '--config', file], v.env, v.name);
  }
  await waitForPort({ host: '127.0.0.1', port }, quiet, { timeoutMs: 60_000, intervalMs: 20 });
  return { port, p };
}

/** The same stunnel client hop for every server. */
async function startClient(auth: Auth, to: number): Promise<number> {
  const port = await freePort();
  const conf = join(dir, `client-${port}.conf`);
  const creds = auth === 'psk' ? [`PSKsecrets = ${PSK_FILE}`, 'PSKidentity = Client1'] : [`cert = ${pki.client.cert}`, `key = ${pki.client.key}`, `CAfile = ${pki.ca.cert}`, 'verifyChain = yes', 'checkIP = 127.0.0.1'];
  writeFileSync(conf, ['foreground = yes', 'pid =', 'debug = 3', 'syslog = no', '[c]', 'client = yes', `accept = 127.0.0.1:${port}`, `connect = 127.0.0.1:${to}`,
    ...creds, 'sslVersionMin = TLSv1.3', 'ciphersuites = TLS_AES_128_GCM_SHA256', ''].join('\n'));
  start(['stunnel', conf]);
  await waitForPort({ host: '127.0.0.1', port }, quiet, { timeoutMs: 10_000, intervalMs: 10 });
  return port;
}

// The same Node load as bench:proxy's --node-load: one sink in this process, 1 MiB writes.
const load = await startNodeLoad();

interface Sample { mbps: number; ms: number; ticksMs: number; scavenge: number; markCompact: number; threads: Map<string, number> }
async function bulk(port: number, p: Proc): Promise<Sample> {
  const pid = p.proc.pid!;
  const gc0 = { ...p.gc };
  const [t0s, s0] = [cpuByThread(pid), cpuSeconds(pid)];
  const s = await load.run(port, CONNS, BYTES);
  const [t1s, s1] = [cpuByThread(pid), cpuSeconds(pid)];
  if (TRACE_GC) await new Promise((r) => setTimeout(r, 300)); // the last trace lines are in the pipe
  const mib = BYTES / 2 ** 20;
  const threads = new Map([...t1s].map(([k, ns]) => [k, (ns - (t0s.get(k) ?? 0)) / 1e6 / mib]));
  return { threads, mbps: BYTES / 1e6 / s, ms: (sum(t1s) - sum(t0s)) / 1e6 / mib, ticksMs: ((s1 - s0) * 1000) / mib, scavenge: p.gc.scavenge - gc0.scavenge, markCompact: p.gc.markCompact - gc0.markCompact };
}

const median = (v: number[]) => percentile(v, 50);
const f = (n: number, d: number) => (Number.isFinite(n) ? n.toFixed(d) : '–');
const cell = (v: number[], d: number, base?: number[]) =>
  `${f(median(v), d)}${base ? ` (${f(median(v) / median(base), 2)}×)` : ''} [${f(Math.min(...v), d)}–${f(Math.max(...v), d)}]`;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const out: string[] = [`${new Date().toISOString()} node bench/tls-cpu.ts ${process.argv.slice(2).join(' ')}`, `load average before: ${loadavg()}`];
for (const auth of values.auth.split(',') as Auth[]) {
  const servers = [];
  for (const v of VARIANTS) {
    const s = await startServer(v, auth, load.port);
    servers.push({ v, p: s.p, entry: await startClient(auth, s.port), samples: [] as Sample[] });
  }
  for (const s of servers) await bulk(s.entry, s.p); // warm-up: JIT, TLS sessions, heaps grown
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < servers.length; k++) {
      const s = servers[(k + run) % servers.length]!;
      s.samples.push(await bulk(s.entry, s.p));
    }
  }
  const floor = servers.find((s) => s.v.floor)?.samples;
  const col = (s: { samples: Sample[] }, k: Exclude<keyof Sample, 'threads'>) => s.samples.map((x) => x[k]);
  out.push('', `${auth}, ${CONNS} conn(s), ${(BYTES / 2 ** 20).toFixed(0)} MiB × ${RUNS} runs, medians [min–max], load average after: ${loadavg()}`, '', markdownTable(
    ['server', 'MB/s', 'CPU ms/MiB, schedstat (× floor)', 'CPU ms/MiB, ticks', ...(TRACE_GC ? ['scavenges / run', 'mark-compacts / run'] : [])],
    servers.map((s) => [s.v.name, cell(col(s, 'mbps'), 0), cell(col(s, 'ms'), 3, floor && col({ samples: floor }, 'ms')), cell(col(s, 'ticksMs'), 2),
      ...(TRACE_GC ? [cell(col(s, 'scavenge'), 0), cell(col(s, 'markCompact'), 0)] : [])]),
  ));
  if (values.threads) {
    // CPU ms per MiB by thread name (main = the process's first thread), medians: who does the work.
    const names = [...new Set(servers.flatMap((s) => s.samples.flatMap((x) => [...x.threads.keys()])))].sort();
    out.push('', markdownTable(['server', ...names], servers.map((s) => [s.v.name, ...names.map((n) => f(median(s.samples.map((x) => x.threads.get(n) ?? 0)), 3))])));
  }
  await Promise.all([...children].map((c) => (stopping.add(c), c.kill('SIGTERM'), once(c, 'exit'))));
}
console.log(out.join('\n'));
process.exit(0);
