// Cost of the output directory held by file descriptors and locked (issue 8): the whole init
// (dist/tee-init.js with a config) writing 20 file secrets, with a child that exits at once and
// with a child that leaves 2000 files in 20 subdirectories for the wipe, next to baselines
// measured in the same run: bare node, and the same child work with `rm -rf` and no init.
// `--compare PATH` adds another bundle (e.g. main's, with the path-based wipe) on the same configs.
// Usage: npm run build && node bench/wipe.ts [--runs N] [--compare OTHER/dist/tee-init.js]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bundlePath, markdownTable, percentile } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, compare: { type: 'string' } } });
const runs = Number(values.runs);
const node = process.execPath;
const bundle = bundlePath();
const dir = mkdtempSync('/dev/shm/tee-init-bench-wipe-');
const out = join(dir, 'out');

const secrets: Record<string, unknown> = {};
for (let i = 0; i < 20; i++) {
  writeFileSync(join(dir, `s${i}`), `secret-${i}-${'x'.repeat(1024)}`);
  secrets[`s${i}`] = { source: 'file', path: join(dir, `s${i}`), file: `s${i}` };
}
const MAKE_FILES = (at: string) => `cd ${at} && for d in $(seq 1 20); do mkdir d$d; for f in $(seq 1 100); do echo data > d$d/f$f; done; done`;
function config(name: string, command: string[]): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify({ log: { level: 'warn' }, secrets, output: { dir: out }, run: { command } }));
  return path;
}
const quick = config('quick', ['true']);
const busy = config('busy', ['sh', '-c', MAKE_FILES(out)]);

function wall(argv: string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const scratch = join(dir, 'scratch');
const cases: Record<string, string[]> = {
  'node -e 0 (baseline)': [node, '-e', '0'],
  'sh: 2000 files in 20 dirs, then rm -rf, no init (baseline for the child work)': ['sh', '-c', `mkdir ${scratch} && ${MAKE_FILES(scratch)} && rm -rf ${scratch}`],
  'tee-init: 20 file secrets, child `true`': [node, '--disable-sigusr1', bundle, '--config', quick],
  'tee-init: 20 file secrets, child leaves 2000 files to wipe': [node, '--disable-sigusr1', bundle, '--config', busy],
};
if (values.compare) {
  cases['other bundle: 20 file secrets, child `true`'] = [node, '--disable-sigusr1', values.compare, '--config', quick];
  cases['other bundle: 20 file secrets, child leaves 2000 files to wipe'] = [node, '--disable-sigusr1', values.compare, '--config', busy];
}

const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
try {
  for (const argv of Object.values(cases)) wall(argv); // warm-up
  for (let i = 0; i < runs; i++) for (const [k, argv] of Object.entries(cases)) times[k]!.push(wall(argv)); // interleaved
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const base = percentile(times['node -e 0 (baseline)']!, 50);
console.log(`\n## Output directory: write 20 secrets, wipe (${runs} runs each, interleaved, ${cpus().length} cores)\n`);
console.log(markdownTable(['command', 'median ms', 'p90 ms', 'ratio to node -e 0'],
  Object.entries(times).map(([k, v]) => [k, percentile(v, 50).toFixed(1), percentile(v, 90).toFixed(1), (percentile(v, 50) / base).toFixed(2)])));
