// Boot time of the attested secret bootstrap (issue 3): from starting tee-init to its child
// running, for 1, 4 and 20 secrets with workload identity federation + impersonation, at 0 and
// 50 ms of latency injected on every Google API, against a sequential-fetch baseline
// (fetch.concurrency: 1) and bare `node -e 0`, all in the same run.
// Usage: npm run build && node bench/boot.ts [--runs N]
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startWorld } from '../test/fakes/world.ts';
import { bundlePath, markdownTable, percentile } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const runs = Number(values.runs);
const node = process.execPath;
const bundle = bundlePath();
const now = () => performance.timeOrigin + performance.now();

const world = await startWorld({ teeserver: false });
const dir = mkdtempSync('/dev/shm/tee-init-bench-');
for (let i = 0; i < 20; i++) world.addSecret(`projects/alice-proj/secrets/s${i}`, `secret-${i}-${'x'.repeat(64)}`);

function config(n: number, concurrency: number): string {
  const secrets = Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`s${i}`, { source: 'gcp', ref: `projects/alice-proj/secrets/s${i}/versions/latest`, credentials: 'alice', file: `s${i}` }]),
  );
  const path = join(dir, `c-${n}-${concurrency}.json`);
  writeFileSync(path, JSON.stringify({
    log: { level: 'warn' },
    attestation: { tokenFile: world.tokenFile },
    credentials: { alice: { type: 'confidential-space', provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount } },
    secrets,
    fetch: { concurrency, deadline: '60s' },
    output: { dir: join(dir, 'out') },
    // The child prints the wall clock (ns) the moment it runs.
    run: { command: ['date', '+%s%N'] },
    endpoints: world.endpoints,
  }));
  return path;
}

/** ms from spawning tee-init to its child running. */
async function bootMs(configPath: string): Promise<number> {
  const t0 = now();
  const r = await execa(node, ['--disable-sigusr1', bundle, '--config', configPath], { env: { NO_PROXY: '127.0.0.1,localhost' }, reject: false });
  if (r.exitCode !== 0) throw new Error(`tee-init failed: ${r.stderr}`);
  return Number(BigInt(r.stdout.trim()) / 1000n) / 1000 - t0;
}

async function wallMs(argv: string[]): Promise<number> {
  const t0 = now();
  await execa(argv[0]!, argv.slice(1));
  return now() - t0;
}

function setLatency(ms: number, apis: ('sts' | 'iam' | 'sm')[] = ['sts', 'iam', 'sm']): void {
  world.gcp.clearFaults();
  if (ms > 0) for (const api of apis) world.gcp.fault(api, { latencyMs: ms });
}

const med = (xs: number[]) => percentile(xs, 50);
try {
  const bare: number[] = [];
  for (let i = 0; i < runs + 2; i++) bare.push(await wallMs([node, '-e', '0']));
  const bareMs = med(bare.slice(2));

  const rows: string[][] = [];
  for (const latency of [0, 50]) {
    setLatency(latency);
    for (const n of [1, 4, 20]) {
      const par: number[] = [];
      const seq: number[] = [];
      await bootMs(config(n, 16)); // warm-up (page cache)
      for (let i = 0; i < runs; i++) {
        par.push(await bootMs(config(n, 16)));
        seq.push(await bootMs(config(n, 1)));
      }
      rows.push([`${latency} ms`, String(n), med(par).toFixed(0), med(seq).toFixed(0), (med(seq) / med(par)).toFixed(2), `+${(med(par) - bareMs).toFixed(0)}`]);
    }
  }
  console.log(`\n## Boot time: tee-init start -> child running (median of ${runs}; WIF + impersonation; latency on STS, IAM and Secret Manager)\n`);
  console.log(`bare \`node -e 0\` wall time in this run: ${bareMs.toFixed(1)} ms\n`);
  console.log(markdownTable(['latency', 'secrets', 'parallel ms', 'sequential ms (baseline)', 'sequential / parallel', 'parallel minus bare node ms'], rows));

  // The spot check: 4 secrets whose reads take 400 ms each.
  setLatency(400, ['sm']);
  const par4: number[] = [];
  const seq4: number[] = [];
  for (let i = 0; i < Math.min(runs, 3); i++) {
    par4.push(await bootMs(config(4, 16)));
    seq4.push(await bootMs(config(4, 1)));
  }
  console.log('\n## 4 secrets, 400 ms per Secret Manager read\n');
  console.log(markdownTable(['fetch', 'boot ms (median)', 'vs 4 x 400 ms'], [
    ['parallel', med(par4).toFixed(0), (med(par4) / 1600).toFixed(2)],
    ['sequential (baseline)', med(seq4).toFixed(0), (med(seq4) / 1600).toFixed(2)],
  ]));
  console.log(`\nmachine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, ${new Date().toISOString()}`);
} finally {
  await world.close();
  rmSync(dir, { recursive: true, force: true });
}
