// Cost of publishing secret files as a generation behind ..data (issue 14) and of retiring the
// previous one, for a typical set (3 PEM-sized files) and for 50 files, next to a baseline
// measured in the same run: writeFileSync of the same files, in place, into a plain directory
// on the same tmpfs (what a naive rotation does: no atomicity, no checks, nothing to wipe).
// The rotation loop is not in the bundle yet, so this drives OutputDir in-process; the whole
// init's boot-and-wipe cost is bench/wipe.ts (run it with --compare against main's bundle).
// As root the files go to uid 65534 (output.owner), as in production.
// Usage: node bench/rotate-dir.ts [--runs N]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup } from '../src/lib/cleanup.ts';
import { createLog } from '../src/lib/log.ts';
import { OutputDir, type SecretFile } from '../src/materialize/output-dir.ts';
import { markdownTable, percentile } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '300' } } });
const runs = Number(values.runs);
const log = createLog({ level: 'warn', sink: { write: () => {} } });
const owner = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
const parent = mkdtempSync('/dev/shm/tee-init-bench-rotate-');

function set(count: number, bytes: number, round: number): SecretFile[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `s${i}.pem`,
    data: Buffer.from(`round ${round} file ${i} `.padEnd(bytes, 'x')),
    mode: 0o400,
    what: `secret s${i}`,
  }));
}

const us = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e3;
const rows: string[][] = [];
try {
  for (const [label, count, bytes] of [['3 files (~1.6 KB each)', 3, 1600], ['50 files (2 KB each)', 50, 2048]] as const) {
    const plain = mkdtempSync(join(parent, 'plain-'));
    const cleanup = new Cleanup();
    const out = OutputDir.create({ dir: join(parent, `out-${count}`), allowNonTmpfs: false, owner }, cleanup, log);
    const t = { baseline: [] as number[], publish: [] as number[], retire: [] as number[], both: [] as number[] };
    for (let i = 0; i < runs + 10; i++) { // interleaved; the first 10 rounds warm up
      const files = set(count, bytes, i);
      let t0 = process.hrtime.bigint();
      for (const f of files) writeFileSync(join(plain, f.name), f.data, { mode: f.mode });
      const baseline = us(t0);
      t0 = process.hrtime.bigint();
      out.publish(files);
      const publish = us(t0);
      t0 = process.hrtime.bigint();
      out.retireOld();
      const retire = us(t0);
      if (i < 10) continue;
      t.baseline.push(baseline);
      t.publish.push(publish);
      t.retire.push(retire);
      t.both.push(publish + retire);
    }
    cleanup.run();
    const base = percentile(t.baseline, 50);
    const row = (name: string, v: number[]) => [`${label}: ${name}`, percentile(v, 50).toFixed(0), percentile(v, 90).toFixed(0), (percentile(v, 50) / base).toFixed(1)];
    rows.push(row('writeFileSync in place (baseline)', t.baseline), row('publish (new generation, symlinks checked, ..data swapped)', t.publish), row('retireOld (zero through fds, unlink, rmdir)', t.retire), row('publish + retireOld', t.both));
  }
} finally {
  rmSync(parent, { recursive: true, force: true });
}

console.log(`\n## Secret generations: publish and retire (${runs} rotations each, interleaved with the baseline, ${cpus().length} cores${owner ? ', owner 65534' : ''})\n`);
console.log(markdownTable(['operation', 'median µs', 'p90 µs', 'ratio to baseline'], rows));
