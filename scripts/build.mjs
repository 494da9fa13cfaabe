// Builds dist/tee-init.js: one ESM bundle runnable as `node dist/tee-init.js` from a copy of
// dist/ with no node_modules. Heavy modules (config parsing, the Google clients) sit behind
// dynamic imports and land in chunks beside it, loaded only when a config asks for them.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const entry = join(dist, 'tee-init.js');

rmSync(dist, { recursive: true, force: true });

// pino pieces tee-init never uses, kept off the start path (they cost ~4 ms of a ~50 ms start):
// transports and multistream (worker threads loaded from files by path: they cannot work from
// a bundle anyway) and sonic-boom (we hand pino our own fd-2 sink, see src/lib/log.ts). Each stub
// throws if something ever does reach it, so a mistake fails loudly rather than silently.
const PINO_STUBS = {
  './transport': 'module.exports = () => { throw new Error("pino transports are not bundled") }',
  './lib/transport': 'module.exports = () => { throw new Error("pino transports are not bundled") }',
  './lib/multistream': 'module.exports = () => { throw new Error("pino multistream is not bundled") }',
  'sonic-boom': 'module.exports = function SonicBoom() { throw new Error("sonic-boom is not bundled") }',
  worker_threads: 'module.exports = { isMainThread: true }',
};
const stubPinoExtras = {
  name: 'stub-pino-extras',
  setup(b) {
    b.onResolve({ filter: /^(\.\/(lib\/)?(transport|multistream)|sonic-boom|worker_threads)$/ }, (args) =>
      /\/node_modules\/pino\/(pino\.js|lib\/tools\.js)$/.test(args.importer) ? { path: args.path, namespace: 'pino-stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'pino-stub' }, (args) => ({ contents: PINO_STUBS[args.path], loader: 'js' }));
  },
};

// Builtins come from process.getBuiltinModule() (Node >= 22.3), not ES imports: for
// `import { x } from 'node:util'` Node builds a facade that materializes every lazy export of
// the module (util.diff pulls in assert's diff, which opens process.stderr, which switches a
// shared pipe to O_NONBLOCK...): ~10 ms of a ~50 ms start, and a side effect on the child's
// stderr. ES imports get an object of forwarding getters, so esbuild's interop helper copies
// names without touching values; require() gets the module itself.
const builtinsWithoutFacades = {
  name: 'builtins-without-facades',
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      if (!isBuiltin(args.path)) return undefined;
      const name = `node:${args.path.replace(/^node:/, '')}`;
      return { path: name, namespace: args.kind === 'require-call' ? 'builtin-cjs' : 'builtin-esm' };
    });
    b.onLoad({ filter: /.*/, namespace: 'builtin-cjs' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
    b.onLoad({ filter: /.*/, namespace: 'builtin-esm' }, (args) => ({
      contents: `const m = process.getBuiltinModule(${JSON.stringify(args.path)});
if (typeof m === 'function') module.exports = m;
else {
  const o = {};
  for (const k of Object.getOwnPropertyNames(m)) Object.defineProperty(o, k, { get: () => m[k], enumerable: true });
  module.exports = o;
}`,
      loader: 'js',
    }));
  },
};

// The start path is one file: every module the plain init needs, in dist/tee-init.js, so that
// starting it reads and links a single module. Whatever runs only with a config (YAML, zod,
// jose, the Google clients, TLS-PSK) is a second build, loaded by import() from dist/:
// each dynamic import of the entry must be one of these.
const LAZY = { verify: 'src/tools/verify.ts', pipeline: 'src/pipeline.ts', plan: 'src/plan/index.ts', check: 'src/plan/text.ts', proxy: 'src/proxy/start.ts', 'proxy-worker': 'src/proxy/worker.ts', 'splice-thread': 'src/proxy/splice-thread.ts', run: 'src/run/index.ts', shares: 'src/tools/shares.ts', labels: 'src/tools/labels.ts' };
const lazyByPath = new Map(Object.entries(LAZY).map(([name, file]) => [join(root, file), `./${name}.js`]));
const lazyExternal = {
  name: 'lazy-external',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const target = lazyByPath.get(resolvePath(args.resolveDir, args.path));
      if (!target) return { errors: [{ text: `dynamic import of ${args.path} is not one of the lazy entries in scripts/build.mjs` }] };
      return { path: target, external: true };
    });
  },
};

// CommonJS dependencies call require() and read __dirname; ESM has neither.
const banner = {
  js: [
    "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);",
    "const __filename = process.getBuiltinModule('node:url').fileURLToPath(import.meta.url);",
    "const __dirname = process.getBuiltinModule('node:path').dirname(__filename);",
  ].join(' '),
};
// The bundle needs only the version from package.json: importing it whole would put every
// script and devDependency in dist (and change the image's digest when a script is renamed).
const ownPackage = join(root, 'package.json');
const { version } = JSON.parse(readFileSync(ownPackage, 'utf8'));
const versionOnly = {
  name: 'version-only',
  setup(b) {
    b.onLoad({ filter: /package\.json$/ }, (args) => (args.path === ownPackage ? { contents: JSON.stringify({ version }), loader: 'json' } : undefined));
  },
};
const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  banner,
};

const startPath = await build({
  ...common,
  entryPoints: { 'tee-init': join(root, 'src/bin.ts') },
  outdir: dist,
  plugins: [lazyExternal, stubPinoExtras, builtinsWithoutFacades, versionOnly],
});
const lazy = await build({
  ...common,
  entryPoints: Object.fromEntries(Object.entries(LAZY).map(([name, file]) => [name, join(root, file)])),
  outdir: dist,
  splitting: true,
  chunkNames: 'lazy-[hash]',
  plugins: [stubPinoExtras, builtinsWithoutFacades, versionOnly],
});
const result = { metafile: { inputs: {}, outputs: { ...startPath.metafile.outputs, ...lazy.metafile.outputs } } };

// The bundle is ESM wherever dist/ is copied to.
writeFileSync(join(dist, 'package.json'), '{ "type": "module" }\n');
// The config's JSON Schema (generated by scripts/schema.ts, kept current by a test) ships too.
copyFileSync(join(root, 'schema', 'tee-init.schema.json'), join(dist, 'tee-init.schema.json'));

// koffi's prebuilt native module, for orphan reaping (loaded by src/lib/libc.ts).
const koromix = join(root, 'node_modules', '@koromix');
for (const pkg of existsSync(koromix) ? readdirSync(koromix) : []) {
  for (const triplet of readdirSync(join(koromix, pkg))) {
    const file = join(koromix, pkg, triplet, 'koffi.node');
    if (!existsSync(file)) continue;
    mkdirSync(join(dist, 'native', triplet), { recursive: true });
    copyFileSync(file, join(dist, 'native', triplet, 'koffi.node'));
  }
}

// The oldest Node.js the bundle runs on: package.json's engines, the one place it is written.
const MIN_NODE = Number(/^>=\s*(\d+)$/.exec(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node)?.[1]);
if (!Number.isInteger(MIN_NODE)) throw new Error('package.json engines.node must read ">=N"');
const refusal = (found) => `tee-init: needs Node.js ${MIN_NODE} or later, found ${found}: install Node.js ${MIN_NODE} LTS, run the image (which ships it), or in a clone run it with the Node that npm ci brought: node_modules/.bin/node dist/tee-init.js`;

// Run directly as an executable, with the inspector's SIGUSR1 handler off from the first
// instant. The first two lines are both shell and JavaScript (for JS, line 2 is a comment):
// /bin/sh asks node its version and execs `node --disable-sigusr1` on this file only when node
// is new enough, else prints our one line. (An `env -S node --disable-sigusr1` shebang would
// let an older node die on the flag, `node: bad option: --disable-sigusr1`, before any of our
// code ran.) The cost, one `node --version`, is on this path only: the image starts node directly.
// Then, before the banner touches anything newer (process.getBuiltinModule), the same check in
// JavaScript for `node dist/tee-init.js` under an older node. The entry has no static imports,
// so nothing runs before it.
// The init's own heap (issue 19, bench/soak.ts): V8 sizes a heap for throughput and grows it
// lazily, and the init's RSS climbed ~120 → ~260 MiB over 10 minutes of refresh every second
// with no leak behind it. A 1 MiB semi-space holds most of it (~195 → ~140 MiB at 5 minutes);
// the old generation is capped at 256 MB, not lower: past it PID 1 dies of OOM, and with
// `workers: 0` every connection's state is in this heap (64 MB saved only ~9 MiB of RSS). Worker
// threads get their own bounds (src/proxy/workers.ts WORKER_HEAP): one past them is replaced.
// The images' ENTRYPOINTs carry the same flags (a test compares them with this line).
const HEAP_FLAGS = '--max-semi-space-size=1 --max-old-space-size=256';
const shebang = [
  '#!/bin/sh',
  `//bin/true; v=$(node --version 2>/dev/null) || { echo 'tee-init: no node on PATH: install Node.js ${MIN_NODE} LTS' >&2; exit 127; }; m=\${v#v}; if [ "\${m%%.*}" -ge ${MIN_NODE} ] 2>/dev/null; then exec node --disable-sigusr1 ${HEAP_FLAGS} "$0" "$@"; fi; echo "${refusal('Node.js $v at $(command -v node)')}" >&2; exit 78`,
].join('\n');
const check = `if(+process.versions.node.split('.')[0]<${MIN_NODE}){process.stderr.write(\`${refusal('Node.js v${process.versions.node} at ${process.execPath}')}\\n\`);process.exit(78)}`;
writeFileSync(entry, `${shebang}\n${check}\n${readFileSync(entry, 'utf8')}`);
chmodSync(entry, 0o755);

writeFileSync(join(dist, 'meta.json'), JSON.stringify(result.metafile));
const sizes = Object.entries(result.metafile.outputs)
  .filter(([f]) => f.endsWith('.js'))
  .map(([f, o]) => `${f.replace(/^.*dist\//, 'dist/')} ${(o.bytes / 1024).toFixed(0)} KiB`);
console.log(sizes.join('\n'));
