// Start-up of the ways tee-init could ship in the image (issue 9): the bundle as built today
// (dist/tee-init.js on a separate Node), the bundle with Node's compile cache written
// beforehand (what an image build could do: NODE_COMPILE_CACHE / module.enableCompileCache()),
// and a Node single executable application (SEA) carrying the whole bundle, without and with
// V8's code cache. Each against bare `node -e 0` in the same run, interleaved.
// Usage: npm run build && node bench/single-file.ts [--runs N]
// The SEA is built here (.cache/sea/): dist/ re-bundled as one CommonJS file (SEA mains must be
// CommonJS on Node 24), blob by `node --experimental-sea-config`, injected with postject (npx).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { bundlePath, markdownTable, percentile, root } from './lib.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' } } });
const runs = Number(values.runs);
const node = process.execPath;
const bundle = bundlePath();
const dist = join(root, 'dist');
const work = join(root, '.cache', 'sea');
const POSTJECT = 'postject@1.0.0-alpha.6';
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.status}\n${r.stderr}`);
  return r.stdout;
}

/** dist/ (ESM start file + lazy chunks) as one CommonJS file: the lazy imports become lazily
 *  initialised modules inside it; import.meta.url is the executable's, so koffi's native
 *  module is looked up in native/ beside the executable. */
async function seaMain(out: string): Promise<void> {
  const entry = 'process.exit(await main(process.argv.slice(2),process.env));';
  await build({
    entryPoints: [join(dist, 'tee-init.js')],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    outfile: out,
    logLevel: 'warning',
    define: { 'import.meta.url': '__seaUrl' },
    banner: { js: "var __seaUrl = require('node:url').pathToFileURL(process.execPath).href;" },
    plugins: [
      {
        name: 'sea-entry',
        setup(b) {
          // CommonJS has no top-level await: the entry's one await becomes a then().
          b.onLoad({ filter: /[/\\]dist[/\\]tee-init\.js$/ }, (a) => {
            const src = readFileSync(a.path, 'utf8').replace(/^#!.*\n/, '');
            if (!src.includes(entry)) throw new Error(`${a.path}: entry statement not found (bench/single-file.ts must follow src/bin.ts)`);
            return { contents: src.replace(entry, 'main(process.argv.slice(2),process.env).then((c)=>process.exit(c));'), loader: 'js' };
          });
        },
      },
    ],
  });
}

const blobReproducible: Record<string, boolean> = {};
async function buildSea(name: string, useCodeCache: boolean): Promise<string> {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await seaMain(join(dir, 'main.cjs'));
  writeFileSync(join(dir, 'sea-config.json'), JSON.stringify({
    main: join(dir, 'main.cjs'),
    output: join(dir, 'sea.blob'),
    disableExperimentalSEAWarning: true,
    useCodeCache,
    // As the shebang and the image's ENTRYPOINT do; NODE_OPTIONS may not add to it.
    execArgv: ['--disable-sigusr1'],
    execArgvExtension: 'none',
  }));
  sh(node, ['--experimental-sea-config', join(dir, 'sea-config.json')]);
  // Reproducible? The blob is what the image would carry (its digest is the workload identity).
  const config = JSON.parse(readFileSync(join(dir, 'sea-config.json'), 'utf8')) as { output: string };
  writeFileSync(join(dir, 'again.json'), JSON.stringify({ ...config, output: join(dir, 'again.blob') }));
  sh(node, ['--experimental-sea-config', join(dir, 'again.json')]);
  blobReproducible[name] = readFileSync(join(dir, 'sea.blob')).equals(readFileSync(join(dir, 'again.blob')));
  const exe = join(dir, 'tee-init');
  cpSync(node, exe);
  sh('npx', ['--yes', POSTJECT, exe, 'NODE_SEA_BLOB', join(dir, 'sea.blob'), '--sentinel-fuse', FUSE]);
  cpSync(join(dist, 'native'), join(dir, 'native'), { recursive: true });
  return exe;
}

/** A compile cache written by running the bundle once (what an image build would do). */
function warmCompileCache(args: string[], env: NodeJS.ProcessEnv): string {
  const dir = mkdtempSync(join(work, 'compile-cache-'));
  sh(node, ['--disable-sigusr1', bundle, ...args], { ...env, NODE_COMPILE_CACHE: dir });
  return dir;
}
const dirBytes = (dir: string): number =>
  readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);

// Wall time, and the CPU time (user + system) of the command and its descendants, which a
// loaded machine inflates much less than wall time: bash's `times` reports its children's
// getrusage (ms resolution). bash's own start is outside both numbers' differences.
interface Sample { wall: number; cpu: number }
function measure(argv: string[], env: NodeJS.ProcessEnv): Sample {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', '"$@" >/dev/null 2>/tmp/.tee-init-bench-err </dev/null; s=$?; times; exit $s', 'bash', ...argv], { encoding: 'utf8', env });
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${readFileSync('/tmp/.tee-init-bench-err', 'utf8')}`);
  const children = r.stdout.trim().split('\n')[1] ?? '';
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { wall, cpu: (secs.reduce((a, b) => a + b, 0)) * 1000 };
}
interface Case { argv: string[]; env?: NodeJS.ProcessEnv }
// Interleaved, so drift in machine load hits every case alike.
function compare(cases: Record<string, Case>): Record<string, Sample[]> {
  const out: Record<string, Sample[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  const env = (c: Case) => ({ ...process.env, ...c.env });
  for (const c of Object.values(cases)) for (let i = 0; i < 3; i++) measure(c.argv, env(c));
  for (let i = 0; i < runs; i++) for (const [k, c] of Object.entries(cases)) out[k]!.push(measure(c.argv, env(c)));
  return out;
}

mkdirSync(work, { recursive: true });
for (const d of readdirSync(work)) if (d.startsWith('compile-cache-')) rmSync(join(work, d), { recursive: true, force: true });
const sea = await buildSea('plain', false);
const seaCached = await buildSea('code-cache', true);

// A boot with one file secret: config parsed (YAML, zod), secret read, written to tmpfs, child run.
const shm = mkdtempSync('/dev/shm/tee-init-bench-');
writeFileSync(join(shm, 'secret'), 'x'.repeat(64));
const config = join(shm, 'tee-init.yaml');
writeFileSync(config, `log: { level: warn }\nsecrets:\n  s: { source: file, path: ${join(shm, 'secret')}, file: s }\noutput: { dir: ${join(shm, 'out')} }\nrun: { command: ["true"] }\n`);

const plainArgs = ['--', 'true'];
const bootArgs = ['--config', config];
const cacheForPlain = warmCompileCache(plainArgs, process.env);
const cacheForBoot = warmCompileCache(bootArgs, process.env);
// Is a compile cache reproducible? (It would be part of the image, whose digest must be stable.)
const again = warmCompileCache(bootArgs, process.env);
const sameBytes = (a: string, b: string) => {
  const files = (d: string) => readdirSync(d, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(d.length)).sort();
  const fa = files(a);
  return JSON.stringify(fa) === JSON.stringify(files(b)) && fa.every((f) => readFileSync(a + f).equals(readFileSync(b + f)));
};
const reproducible = sameBytes(cacheForBoot, again);

const sets: [string, string[]][] = [['`tee-init -- true` (no config)', plainArgs], ['boot with one file secret', bootArgs]];
const results: string[] = [];
for (const [title, args] of sets) {
  const cache = args === plainArgs ? cacheForPlain : cacheForBoot;
  const r = compare({
    'node -e 0 (baseline)': { argv: [node, '-e', '0'] },
    'bundle (today)': { argv: [node, '--disable-sigusr1', bundle, ...args] },
    'bundle + compile cache': { argv: [node, '--disable-sigusr1', bundle, ...args], env: { NODE_COMPILE_CACHE: cache } },
    SEA: { argv: [sea, ...args] },
    'SEA + code cache': { argv: [seaCached, ...args] },
  });
  const med = (k: string, f: keyof Sample) => percentile(r[k]!.map((x) => x[f]), 50);
  const base = med('node -e 0 (baseline)', 'wall');
  const today = med('bundle (today)', 'wall');
  const todayCpu = med('bundle (today)', 'cpu');
  results.push(`\n## ${title} (${runs} runs each, interleaved)\n`);
  results.push(markdownTable(['how', 'wall median ms', 'wall p90 ms', 'wall minus bare node', 'wall vs bundle', 'CPU median ms', 'CPU vs bundle'],
    Object.keys(r).map((k) => {
      const m = med(k, 'wall');
      return [k, m.toFixed(1), percentile(r[k]!.map((x) => x.wall), 90).toFixed(1), (m - base).toFixed(1), (m / today).toFixed(2), med(k, 'cpu').toFixed(0), (med(k, 'cpu') / todayCpu).toFixed(2)];
    })));
}
rmSync(shm, { recursive: true, force: true });

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const distBytes = dirBytes(dist) - statSync(join(dist, 'meta.json')).size;
console.log(results.join('\n'));
console.log('\n## Sizes\n');
console.log(markdownTable(['what', 'size'], [
  ['node binary (needed beside the bundle)', mb(statSync(node).size)],
  ['dist/ (bundle, chunks, native/)', mb(distBytes)],
  ['compile cache after `-- true` / after a boot', `${mb(dirBytes(cacheForPlain))} / ${mb(dirBytes(cacheForBoot))}`],
  ['SEA (node + blob; native/ beside it)', mb(statSync(sea).size)],
  ['SEA + code cache', mb(statSync(seaCached).size)],
]));
console.log(`\nbyte-identical when made twice: compile cache ${reproducible ? 'yes' : 'no'}; SEA blob ${blobReproducible.plain ? 'yes' : 'no'}; SEA blob with code cache ${blobReproducible['code-cache'] ? 'yes' : 'no'}`);
console.log(`\nmachine: ${cpus().length} x ${cpus()[0]?.model}, shared with other jobs; node ${process.version}, ${new Date().toISOString()}`);
if (!existsSync(sea)) process.exitCode = 1;
