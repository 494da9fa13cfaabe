// Start-up cost, memory and signal-forwarding latency of the plain init (issue 2).
// Usage: npm run build && node bench/startup.ts [--runs N] [--signals N]
// Prints tables comparing tee-init with a baseline measured in the same run.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { bundlePath, markdownTable, percentile } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '40' }, signals: { type: 'string', default: '500' } } });
const runs = Number(values.runs);
const node = process.execPath;
const bundle = bundlePath();

// The shebang runs the first `node` on PATH: make it this one.
const env = { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}` };

function wall(argv: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'ignore'], env });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

// Interleaved, so drift in machine load hits both sides alike.
function compare(cases: Record<string, string[]>): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const argv of Object.values(cases)) for (let i = 0; i < 5; i++) wall(argv); // warm-up
  for (let i = 0; i < runs; i++) for (const [k, argv] of Object.entries(cases)) out[k]!.push(wall(argv));
  return out;
}

const spawnTrue = `process.getBuiltinModule('child_process').spawn('true', { stdio: 'inherit' }).on('exit', (c) => process.exit(c))`;
const startCases = {
  'node -e 0 (baseline)': [node, '-e', '0'],
  'node spawning true (floor for any Node init)': [node, '-e', spawnTrue],
  'tee-init -- true': [node, '--disable-sigusr1', bundle, '--', 'true'],
  'tee-init --log-level warn -- true': [node, '--disable-sigusr1', bundle, '--log-level', 'warn', '--', 'true'],
  // /bin/sh asks `node --version` first, then execs node (the Node version check, see build.mjs).
  'dist/tee-init.js -- true (through its shebang)': [bundle, '--', 'true'],
};
const start = compare(startCases);
const base = percentile(start['node -e 0 (baseline)']!, 50);
console.log(`\n## Start-up wall time (${runs} runs each, interleaved)\n`);
console.log(markdownTable(['command', 'median ms', 'p90 ms', 'ratio to baseline (median)'],
  Object.entries(start).map(([k, v]) => [k, percentile(v, 50).toFixed(1), percentile(v, 90).toFixed(1), (percentile(v, 50) / base).toFixed(2)])));

// Memory: the init's peak RSS (VmHWM) while it supervises `sleep`, next to an idle bare node.
async function peakRss(argv: string[]): Promise<{ hwm: number; rss: number }> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  // The init logs "child started" once it is supervising; bare node prints nothing, so wait a moment.
  if (argv.includes(bundle)) {
    let seen = '';
    for await (const chunk of child.stderr!) { seen += chunk; if (seen.includes('child started')) break; }
  }
  await new Promise((r) => setTimeout(r, 300));
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)![1]) / 1024;
  child.kill('SIGTERM');
  await once(child, 'exit');
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}
const mem = {
  'node -e "setInterval(()=>{},1e9)" (baseline)': await peakRss([node, '-e', 'setInterval(()=>{},1e9)']),
  'tee-init -- sleep 60': await peakRss([node, '--disable-sigusr1', bundle, '--', 'sleep', '60']),
};
console.log('\n## Memory while supervising\n');
console.log(markdownTable(['process', 'peak RSS (VmHWM) MB', 'RSS MB'],
  Object.entries(mem).map(([k, v]) => [k, v.hwm.toFixed(1), v.rss.toFixed(1)])));

// Signal latency: SIGUSR1 sent at t0 (CLOCK_MONOTONIC) to the init, or directly to the child
// as the baseline; the child's handler prints its own CLOCK_MONOTONIC on arrival.
const catcher = `
process.on('SIGUSR1', () => process.stdout.write(process.hrtime.bigint() + '\\n'));
process.stdout.write('ready\\n'); setInterval(() => {}, 1e9);`;
async function latency(viaInit: boolean, n: number): Promise<number[]> {
  const argv = viaInit ? [node, '--disable-sigusr1', bundle, '--', node, '-e', catcher] : [node, '-e', catcher];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines = (async function* () {
    let buf = '';
    for await (const chunk of proc.stdout!) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { yield buf.slice(0, i); buf = buf.slice(i + 1); }
    }
  })();
  await lines.next(); // ready
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    process.kill(proc.pid!, 'SIGUSR1');
    const { value } = await lines.next();
    out.push(Number(BigInt(value!) - t0) / 1e6);
  }
  proc.kill('SIGTERM');
  await once(proc, 'exit');
  return out;
}
const nSig = Number(values.signals);
const direct = await latency(false, nSig);
const via = await latency(true, nSig);
console.log(`\n## Signal delivery latency, kill -> handler in the child (${nSig} signals)\n`);
console.log(markdownTable(['path', 'p50 ms', 'p99 ms'], [
  ['kill(child) directly (baseline)', percentile(direct, 50).toFixed(3), percentile(direct, 99).toFixed(3)],
  ['kill(tee-init) -> forwarded', percentile(via, 50).toFixed(3), percentile(via, 99).toFixed(3)],
  ['added by tee-init', (percentile(via, 50) - percentile(direct, 50)).toFixed(3), (percentile(via, 99) - percentile(direct, 99)).toFixed(3)],
]));
console.log(`\nmachine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, ${new Date().toISOString()}`);
