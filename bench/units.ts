// Run stage (issue 10): time from the last secret written to every unit ready, for 1 and 3
// processes started in a chain (each after the previous, TCP readiness), on the whole init (the
// bundle with a config), against the reference demo's way in the same run: a shell script that
// starts each program in the background and polls `nc -z` (sleep 0.2, as the demo; and 0.02).
// The programs are `nc -lk` listeners (they bind at once: the time measured is the supervisor's).
// Also the init's memory with 3 processes, against 1 and bare node.
// Usage: npm run build && node bench/units.ts [--runs N]
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/net.ts';
import { LogTail } from '../test/helpers/init.ts';
import { bundlePath, markdownTable, percentile } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const runs = Number(values.runs);
const node = process.execPath;
const bundle = bundlePath();
const dir = mkdtempSync('/dev/shm/tee-init-bench-units-');
writeFileSync(join(dir, 'secret.pem'), 'not really a key\n');

async function ports(n: number): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, () => freePort()));
}

function config(ps: number[], interval: string): string {
  const processes = Object.fromEntries(ps.map((p, i) => [`p${i}`, {
    command: ['nc', '-lk', '127.0.0.1', String(p)],
    ...(i > 0 ? { after: [`p${i - 1}`] } : {}),
    ready: { tcp: `127.0.0.1:${p}`, interval },
  }]));
  const path = join(dir, `c-${ps.join('-')}.json`);
  writeFileSync(path, JSON.stringify({
    log: { level: 'debug' },
    secrets: { key: { source: 'file', path: join(dir, 'secret.pem'), file: 'key.pem' } },
    output: { dir: join(dir, 'out') },
    processes,
  }));
  return path;
}

/** ms from the last "wrote secret" record to "all units ready", from the init's own log; and its pid. */
async function teeInit(ps: number[], interval: string, rss = false): Promise<{ ms: number; rss?: { hwm: number; now: number } }> {
  const proc = execa(node, ['--disable-sigusr1', bundle, '--config', config(ps, interval)], { reject: false, stdin: 'ignore' });
  const log = new LogTail();
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => log.push(c));
  const ready = await log.waitFor('all units ready', 30_000);
  const wrote = log.records.filter((r) => r.message.startsWith('wrote secret')).at(-1)!;
  const ms = Date.parse(ready.time as string) - Date.parse(wrote.time as string);
  const mem = rss ? memory(proc.pid!) : undefined;
  proc.kill('SIGTERM');
  await proc;
  return { ms, ...(mem ? { rss: mem } : {}) };
}

/** The reference demo's way: start, poll with nc -z, start the next; ms from start to all up. */
async function shell(ps: number[], sleep: string): Promise<number> {
  const script = [
    't0=$(date +%s%N)',
    ...ps.flatMap((p) => [`nc -lk 127.0.0.1 ${p} & pids="$pids $!"`, `while ! nc -z 127.0.0.1 ${p}; do sleep ${sleep}; done`]),
    'echo $(( ($(date +%s%N) - t0) / 1000 ))',
    'kill $pids',
  ].join('\n');
  const r = await execa('sh', ['-c', script]);
  return Number(r.stdout.trim()) / 1000;
}

function memory(pid: number): { hwm: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) / 1024;
  return { hwm: kb('VmHWM'), now: kb('VmRSS') };
}

const cases: [string, (ps: number[]) => Promise<number>][] = [
  ['sh + nc -z, sleep 0.2 (reference demo)', (ps) => shell(ps, '0.2')],
  ['sh + nc -z, sleep 0.02', (ps) => shell(ps, '0.02')],
  ['tee-init, ready.tcp interval 100ms (default)', async (ps) => (await teeInit(ps, '100ms')).ms],
  ['tee-init, ready.tcp interval 20ms', async (ps) => (await teeInit(ps, '20ms')).ms],
];

try {
  for (const n of [1, 3]) {
    const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
    for (let r = 0; r < runs + 1; r++) {
      // Interleaved, so that load drift on a shared machine hits every case alike; run 0 warms up.
      for (const [name, run] of cases) {
        const ms = await run(await ports(n));
        if (r > 0) samples.get(name)!.push(ms);
      }
    }
    const base = percentile(samples.get(cases[0]![0])!, 50);
    console.log(`\n${n} process${n > 1 ? 'es in a chain' : ''}, ${runs} runs: ms from secrets written (shell: from its start) to every unit ready\n`);
    console.log(markdownTable(['supervisor', 'median ms', 'p90 ms', 'ratio to reference (median)'],
      cases.map(([name]) => { const s = samples.get(name)!; return [name, percentile(s, 50).toFixed(1), percentile(s, 90).toFixed(1), (percentile(s, 50) / base).toFixed(2)]; })));
  }

  const idle = execa(node, ['-e', 'setInterval(() => {}, 1e9)']);
  await new Promise((r) => setTimeout(r, 500));
  const baseline = memory(idle.pid!);
  idle.kill();
  await idle.catch(() => {});
  const one = (await teeInit(await ports(1), '100ms', true)).rss!;
  const three = (await teeInit(await ports(3), '100ms', true)).rss!;
  console.log('\nMemory of the init once every unit is ready\n');
  console.log(markdownTable(['process', 'peak RSS (VmHWM) MB', 'RSS MB'], [
    ['node -e "setInterval(()=>{},1e9)" (baseline)', baseline.hwm.toFixed(1), baseline.now.toFixed(1)],
    ['tee-init, 1 process', one.hwm.toFixed(1), one.now.toFixed(1)],
    ['tee-init, 3 processes', three.hwm.toFixed(1), three.now.toFixed(1)],
  ]));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
