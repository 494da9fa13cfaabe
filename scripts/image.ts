// `npm run image [-- VARIANT] [--no-cache] [--rebuild-bases]` (or `-- --clean`): builds the container image with
// buildah from the project's Dockerfile, on stand-in base images made from Debian packages
// (no registry is reachable here; production builds use the Dockerfile's distroless defaults).
//
// Everything lives under .cache/ of the clone: container storage (graphroot/runroot), the
// containers.conf/storage.conf that point podman and buildah at it (runc, rlimits this machine
// allows), and the stand-in root filesystems. Nothing touches the machine's own container
// storage. Stand-in bases are cached by a hash of their recipe; the image build uses buildah's
// layer cache; `--timestamp 0` makes it reproducible (same inputs, same digest).
//
// Variants are data (VARIANTS below): a Dockerfile, its build arguments, and the Debian
// packages and files that stand in for the program's official image.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.cache', 'image');
const DEBIAN_SUITE = 'bookworm'; // distroless's -debian12
// The machine's apt sources (mirror, proxy-friendly URIs), else Debian's CDN.
const SOURCES = existsSync('/etc/apt/sources.list.d/debian.sources') ? '/etc/apt/sources.list.d/debian.sources' : 'http://deb.debian.org/debian';

/** One image to build: the Dockerfile, and what stands in for the program's own image. */
export interface Variant {
  dockerfile: string;
  tag: string;
  /** The example whose config the Dockerfile bakes in (for the tests). */
  example: string;
  /** Build argument naming the program's image, and what its stand-in holds. */
  program: {
    arg: string;
    /** Debian packages providing the program (extracted with the runtime libraries). */
    packages: string[];
    /** Shared libraries the program needs beyond the distroless runtime's (the stand-in
     *  runtime carries them; the official program images link these statically). */
    libraries: string[];
    /** Path in the stand-in program image -> path in the extracted Debian packages. */
    files: Record<string, string>;
    /** Set when the program's official image is the final stage's base (it brings the shell,
     *  user and directories the program needs): its stand-in is then the whole extracted root
     *  filesystem with /bin/sh, these users (extract runs no maintainer script that would add
     *  them), the directories (owned by uid, gid) and the image configuration given. */
    base?: {
      passwd: string;
      group: string;
      dirs: Record<string, { uid: number; gid: number; mode: number }>;
      /** `buildah config` arguments: what the official image's Dockerfile sets. */
      config: string[];
    };
  };
}

export const VARIANTS: Record<string, Variant> = {
  redis: {
    dockerfile: 'Dockerfile.distroless',
    tag: 'localhost/tee-init-redis:test',
    example: 'examples/redis',
    program: {
      arg: 'REDIS',
      packages: ['redis-tools'],
      // Debian's redis is dynamically linked with these (the official image bundles jemalloc).
      libraries: ['libjemalloc2', 'liblzf1', 'libatomic1', 'libsystemd0'],
      // /usr/bin/redis-server is a symlink to redis-check-rdb, which acts on its argv[0].
      // redis-cli: the preset's reload (CONFIG SET through the admin socket) runs it.
      files: { '/usr/local/bin/redis-server': 'usr/bin/redis-check-rdb', '/usr/local/bin/redis-cli': 'usr/bin/redis-cli' },
    },
  },
  // PostgreSQL needs a shell: initdb runs `postgres -V` and its bootstrap through popen(3),
  // i.e. /bin/sh. So the final stage is the official image (Debian with dash), Node copied in.
  postgres: {
    dockerfile: 'Dockerfile.postgres',
    tag: 'localhost/tee-init-postgres:test',
    example: 'examples/postgres',
    program: {
      arg: 'POSTGRES',
      // Debian 12's PostgreSQL is 15, with the official postgres:15-bookworm's layout
      // (/usr/lib/postgresql/15/bin, /usr/share/postgresql/15).
      packages: ['postgresql-15'],
      libraries: [],
      files: {},
      base: {
        // The official image's user and group (uid and gid 999), its home and socket directories.
        passwd: 'postgres:x:999:999::/var/lib/postgresql:/bin/sh\n',
        group: 'postgres:x:999:\n',
        dirs: {
          '/var/lib/postgresql': { uid: 999, gid: 999, mode: 0o755 },
          '/var/lib/postgresql/data': { uid: 999, gid: 999, mode: 0o1777 },
          '/var/run/postgresql': { uid: 999, gid: 999, mode: 0o3777 },
        },
        // What the official Dockerfile declares: Dockerfile.postgres must undo what does not fit
        // tee-init (its CMD would become tee-init's arguments; its STOPSIGNAL is SIGINT).
        config: [
          '--env', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin',
          '--env', 'PG_MAJOR=15',
          '--env', 'PGDATA=/var/lib/postgresql/data',
          '--volume', '/var/lib/postgresql/data',
          '--entrypoint', '["docker-entrypoint.sh"]',
          '--cmd', '["postgres"]',
          '--stop-signal', 'SIGINT',
          '--port', '5432',
        ],
      },
    },
  },
};

// What distroless's nodejs24-debian12 holds (glibc, libstdc++, libssl, CA bundle, tzdata,
// /etc/passwd with root, nobody and nonroot 65532), Node at /nodejs/bin/node.
const RUNTIME_PACKAGES = ['libc6', 'libstdc++6', 'libgcc-s1', 'libssl3', 'ca-certificates', 'tzdata', 'netbase'];
const PASSWD = 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n';
// The build stage needs a shell for RUN, and Node with npm.
const BUILD_PACKAGES = ['dash', 'coreutils']; // coreutils: npm's #!/usr/bin/env node

// ------------------------------------------------------------------------- containers setup

/** The environment that points podman, buildah and skopeo at the clone's private storage. */
export function containersEnv(): NodeJS.ProcessEnv {
  const dir = join(root, '.cache', 'containers');
  const storageConf = join(dir, 'storage.conf');
  const containersConf = join(dir, 'containers.conf');
  const policy = join(dir, 'policy.json');
  const registries = join(dir, 'registries.conf');
  mkdirSync(join(dir, 'networks'), { recursive: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  forgetCopiedPodmanState(join(dir, 'storage'));
  writeIfChanged(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/run"\n`);
  // crun fails on this kind of machine (hybrid cgroups); runc works. The default rlimits need
  // CAP_SYS_RESOURCE, which the machine lacks. Networks and events stay in the clone too.
  writeIfChanged(
    containersConf,
    [
      '[containers]',
      'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${dir}/events.log"`,
      `tmp_dir = "${dir}/tmp"`,
      '[network]',
      'network_backend = "netavark"',
      `network_config_dir = "${dir}/networks"`,
      '',
    ].join('\n'),
  );
  // Nothing is pulled (--pull=never); local images need no signature policy beyond this.
  writeIfChanged(policy, '{ "default": [{ "type": "insecureAcceptAnything" }] }\n');
  writeIfChanged(registries, 'unqualified-search-registries = []\n');
  return {
    ...process.env,
    CONTAINERS_STORAGE_CONF: storageConf,
    CONTAINERS_CONF: containersConf,
    CONTAINERS_REGISTRIES_CONF: registries,
    REGISTRIES_CONFIG_PATH: registries,
    SIGNATURE_POLICY_PATH: policy,
    // buildah keeps RUN --mount=type=cache directories under TMPDIR: in the clone too.
    TMPDIR: join(dir, 'tmp'),
  };
}

/** podman records its paths in its database (graphroot/libpod/bolt_state.db) and, when they
 *  differ from the configuration, uses the database's: a .cache copied from another clone (a git
 *  worktree made by copying one) sends podman to that clone's storage, where it would list, run
 *  and `system reset` someone else's images and containers while buildah builds here. A database
 *  that does not name this storage is such a copy, and describes no container of this clone. */
function forgetCopiedPodmanState(storage: string): void {
  const db = join(storage, 'libpod', 'bolt_state.db');
  if (existsSync(db) && !readFileSync(db, 'latin1').includes(`graph-root${storage}`)) rmSync(db);
}

function writeIfChanged(file: string, text: string): void {
  if (existsSync(file) && readFileSync(file, 'utf8') === text) return;
  writeFileSync(file, text);
}

/** Runs a tool; output to the terminal unless `capture`. Throws one line naming the step. */
export function run(cmd: string, args: string[], options: SpawnSyncOptions & { capture?: boolean } = {}): string {
  const { capture, ...rest } = options;
  const r = spawnSync(cmd, args, { env: containersEnv(), stdio: capture ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'], encoding: 'utf8', maxBuffer: 64 << 20, ...rest });
  if (r.error) throw new Error(`image: ${cmd} could not run: ${r.error.message}`);
  if (r.status !== 0) {
    const detail = capture ? `\n${String(r.stderr).trim().split('\n').slice(-15).join('\n')}` : '';
    throw new Error(`image: \`${cmd} ${args.slice(0, 3).join(' ')} ...\` failed (status ${r.status ?? r.signal})${detail}`);
  }
  return capture ? String(r.stdout).trim() : '';
}

const podman = (args: string[], capture = true) => run('podman', args, { capture });
export const imageExists = (ref: string) => spawnSync('podman', ['image', 'exists', ref], { env: containersEnv() }).status === 0;

// ------------------------------------------------------------------------- stand-in bases

/** The Node binary the project already depends on (the `node` devDependency). */
function nodeBinary(): string {
  return join(root, 'node_modules', 'node', 'bin', 'node');
}
/** npm's package directory (the build stand-in needs npm; the `node` package ships only node). */
function npmDir(): string {
  const cli = process.env.npm_execpath ?? realpathSync(run('sh', ['-c', 'command -v npm'], { capture: true }));
  return join(dirname(realpathSync(cli)), '..');
}

function versionOf(binary: string, args: string[]): string {
  return run(binary, args, { capture: true });
}

interface Bases {
  build: string;
  runtime: string;
  program: string;
}

/** Builds (or finds cached) stand-ins for the Dockerfile's three base images. */
export function standInBases(name: string, variant: Variant, options: { rebuild?: boolean; log?: (s: string) => void } = {}): Bases {
  const log = options.log ?? console.log;
  const npm = npmDir();
  const recipe = {
    suite: DEBIAN_SUITE,
    sources: SOURCES.startsWith('/') ? readFileSync(SOURCES, 'utf8') : SOURCES,
    runtime: RUNTIME_PACKAGES,
    build: BUILD_PACKAGES,
    program: variant.program,
    node: versionOf(nodeBinary(), ['--version']),
    npm: JSON.parse(readFileSync(join(npm, 'package.json'), 'utf8')).version as string,
    passwd: PASSWD,
    group: GROUP,
    script: 3, // bump when the way the stand-ins are assembled changes
  };
  const key = createHash('sha256').update(JSON.stringify(recipe)).digest('hex').slice(0, 16);
  const bases: Bases = {
    build: `localhost/tee-init-standin/${name}-build:${key}`,
    runtime: `localhost/tee-init-standin/${name}-runtime:${key}`,
    program: `localhost/tee-init-standin/${name}-program:${key}`,
  };
  if (!options.rebuild && Object.values(bases).every(imageExists)) {
    log(`stand-in bases: cached (${key})`);
    return bases;
  }

  const rootfs = join(cache, `rootfs-${key}`);
  if (options.rebuild || !existsSync(join(rootfs, '.complete'))) {
    rmSync(rootfs, { recursive: true, force: true });
    mkdirSync(cache, { recursive: true });
    const packages = [...RUNTIME_PACKAGES, ...BUILD_PACKAGES, ...variant.program.libraries, ...variant.program.packages];
    log(`stand-in bases: mmdebstrap ${DEBIAN_SUITE} (${packages.join(', ')})`);
    // extract: unpack the packages (and their dependencies), run no maintainer script.
    run('mmdebstrap', ['--quiet', '--variant=extract', `--include=${packages.join(',')}`, '--skip=check/empty', DEBIAN_SUITE, `${rootfs}.tmp`, SOURCES], {
      env: { ...process.env, SOURCE_DATE_EPOCH: '0' },
    });
    renameSync(`${rootfs}.tmp`, rootfs);
    writeFileSync(join(rootfs, '.complete'), key);
  }

  const assemble = (ref: string, fill: (mnt: string) => void, config: string[] = []) => {
    const ctr = run('buildah', ['from', 'scratch'], { capture: true });
    try {
      const mnt = run('buildah', ['mount', ctr], { capture: true });
      fill(mnt);
      if (config.length) run('buildah', ['config', ...config, ctr]);
      run('buildah', ['commit', '--quiet', '--timestamp', '0', ctr, ref], { capture: true });
    } finally {
      spawnSync('buildah', ['rm', ctr], { env: containersEnv(), stdio: 'ignore' });
    }
  };
  // The extracted files, without the device nodes mmdebstrap made (a runtime provides /dev).
  const copyRootfs = (mnt: string) => {
    const skip = new Set([join(rootfs, '.complete'), join(rootfs, 'dev')]);
    cpSync(rootfs, mnt, { recursive: true, verbatimSymlinks: true, filter: (s) => !skip.has(s) });
    mkdirSync(join(mnt, 'dev'), { recursive: true });
  };
  const caBundle = (mnt: string) => {
    // update-ca-certificates did not run (no maintainer scripts): concatenate Mozilla's roots.
    const dir = join(rootfs, 'usr', 'share', 'ca-certificates', 'mozilla');
    const pem = readdirSync(dir).sort().map((f) => readFileSync(join(dir, f), 'utf8')).join('');
    mkdirSync(join(mnt, 'etc', 'ssl', 'certs'), { recursive: true });
    writeFileSync(join(mnt, 'etc', 'ssl', 'certs', 'ca-certificates.crt'), pem);
  };
  const users = (mnt: string, more = { passwd: '', group: '' }) => {
    writeFileSync(join(mnt, 'etc', 'passwd'), PASSWD + more.passwd);
    writeFileSync(join(mnt, 'etc', 'group'), GROUP + more.group);
    for (const d of ['tmp', 'home/nonroot', 'root']) mkdirSync(join(mnt, d), { recursive: true });
    chmodSync(join(mnt, 'tmp'), 0o1777);
  };
  const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

  log('stand-in bases: assembling build, runtime and program images');
  // runtime: libraries only, like distroless: every executable and shell removed.
  assemble(bases.runtime, (mnt) => {
    copyRootfs(mnt);
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/bin']) {
      const p = join(mnt, d);
      if (existsSync(p) && !isSymlink(p)) rmSync(p, { recursive: true, force: true });
    }
    for (const d of ['usr/bin', 'usr/sbin']) mkdirSync(join(mnt, d), { recursive: true });
    for (const dir of ['var/lib/dpkg', 'var/cache', 'var/log', 'usr/share/doc', 'usr/share/man', 'usr/share/info']) rmSync(join(mnt, dir), { recursive: true, force: true });
    caBundle(mnt);
    users(mnt);
    mkdirSync(join(mnt, 'nodejs', 'bin'), { recursive: true });
    copyFileSync(nodeBinary(), join(mnt, 'nodejs', 'bin', 'node'));
    chmodSync(join(mnt, 'nodejs', 'bin', 'node'), 0o755);
  }, ['--env', PATH, '--env', 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt', '--entrypoint', '["/nodejs/bin/node"]']);

  // dash's maintainer script would have made /bin/sh
  const shell = (mnt: string) => {
    if (!existsSync(join(mnt, 'bin', 'sh'))) symlinkSync('dash', join(mnt, 'bin', 'sh'));
  };
  // build: the same files with a shell, Node and npm at /usr/local (like the node image).
  assemble(bases.build, (mnt) => {
    copyRootfs(mnt);
    users(mnt);
    shell(mnt);
    mkdirSync(join(mnt, 'usr', 'local', 'bin'), { recursive: true });
    copyFileSync(nodeBinary(), join(mnt, 'usr', 'local', 'bin', 'node'));
    chmodSync(join(mnt, 'usr', 'local', 'bin', 'node'), 0o755);
    cpSync(npm, join(mnt, 'usr', 'local', 'lib', 'node_modules', 'npm'), { recursive: true, verbatimSymlinks: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(mnt, 'usr', 'local', 'bin', 'npm'));
  }, ['--env', PATH, '--cmd', '["node"]']);

  // program: the files the Dockerfile copies from the program's official image, or that whole
  // image when it is the final stage's base.
  const base = variant.program.base;
  assemble(bases.program, (mnt) => {
    if (base) {
      copyRootfs(mnt);
      for (const dir of ['var/cache/apt', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info']) rmSync(join(mnt, dir), { recursive: true, force: true });
      caBundle(mnt);
      users(mnt, base);
      shell(mnt);
      for (const [dir, { uid, gid, mode }] of Object.entries(base.dirs)) {
        mkdirSync(join(mnt, dir), { recursive: true });
        chownSync(join(mnt, dir), uid, gid);
        chmodSync(join(mnt, dir), mode);
      }
    }
    for (const [to, from] of Object.entries(variant.program.files)) {
      mkdirSync(join(mnt, dirname(to)), { recursive: true });
      copyFileSync(join(rootfs, from), join(mnt, to));
      chmodSync(join(mnt, to), 0o755);
    }
  }, base ? base.config : []);

  // Stand-ins of older recipes, and the extracted files, are no longer needed.
  rmSync(rootfs, { recursive: true, force: true });
  const stale = run('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `reference=localhost/tee-init-standin/${name}-*`], { capture: true })
    .split('\n')
    .filter((ref) => ref && !ref.endsWith(`:${key}`));
  if (stale.length) spawnSync('podman', ['rmi', ...stale], { env: containersEnv(), stdio: 'ignore' });
  return bases;
}

function isSymlink(p: string): boolean {
  try {
    return realpathSync(p) !== p;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------- the image

export interface Built {
  tag: string;
  /** Image ID: the digest of its config (which names every layer by content). */
  id: string;
  /** Digest of the image's manifest as it would be pushed (what Confidential Space attests). */
  digest: string;
  seconds: { bases: number; image: number };
}

/** Builds a variant's image on stand-in bases. */
export function buildImage(name = 'redis', options: { noCache?: boolean; rebuildBases?: boolean; log?: (s: string) => void } = {}): Built {
  const variant = VARIANTS[name];
  if (!variant) throw new Error(`image: unknown variant "${name}" (one of ${Object.keys(VARIANTS).join(', ')})`);
  const log = options.log ?? console.log;
  const t0 = performance.now();
  const bases = standInBases(name, variant, { rebuild: options.rebuildBases ?? false, log });
  const t1 = performance.now();
  log(`image: buildah bud ${variant.dockerfile} -> ${variant.tag}${options.noCache ? ' (no cache)' : ''}`);
  const args = [
    'bud', '--quiet', '--network', 'host', '--pull=never', '--timestamp', '0', '--layers',
    ...(options.noCache ? ['--no-cache'] : []),
    '--build-arg', `NODE_BUILD=${bases.build}`,
    '--build-arg', `RUNTIME=${bases.runtime}`,
    '--build-arg', `${variant.program.arg}=${bases.program}`,
    '-f', variant.dockerfile, '-t', variant.tag,
  ];
  // The build stage's npm reaches the registry through this machine's proxy: its CA bundle goes
  // in as a build secret, which is in no layer of any image.
  const ca = process.env.NODE_EXTRA_CA_CERTS;
  if (ca && existsSync(ca)) args.push('--secret', `id=npm-ca,src=${ca}`);
  seedNpmCache();
  try {
    run('buildah', [...args, '.'], { cwd: root, capture: true });
  } finally {
    // buildah leaves a mounted working container for a stage that is only a COPY --from
    // source (FROM ${REDIS} AS redis): remove them, or the clone's .cache cannot be deleted.
    // The storage is this clone's alone, so every working container in it is ours.
    spawnSync('buildah', ['rm', '--all'], { env: containersEnv(), stdio: 'ignore' });
  }
  const t2 = performance.now();
  return {
    tag: variant.tag,
    id: podman(['image', 'inspect', '--format', '{{.Id}}', variant.tag]),
    digest: manifestDigest(variant.tag),
    seconds: { bases: (t1 - t0) / 1000, image: (t2 - t1) / 1000 },
  };
}

/** The build stage's npm cache (a RUN --mount=type=cache, kept by buildah under TMPDIR) starts
 *  as a copy of this machine's npm cache: `npm ci` of the clone has just fetched the same
 *  packages, so the build need not download them again. A copy, never links: npm writes to it. */
function seedNpmCache(): void {
  const target = join(containersEnv().TMPDIR!, 'buildah-cache', 'root', '.npm', '_cacache');
  const r = spawnSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' });
  const source = r.status === 0 ? join(r.stdout.trim(), '_cacache') : '';
  if (existsSync(target) || !source || !existsSync(source)) return;
  mkdirSync(dirname(target), { recursive: true });
  cpSync(source, `${target}.tmp`, { recursive: true });
  renameSync(`${target}.tmp`, target);
}

/** The manifest digest of the image as pushed to a registry (an OCI archive: deterministic). */
export function manifestDigest(ref: string): string {
  const dir = join(cache, 'oci');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  run('skopeo', ['copy', '--quiet', `containers-storage:${ref}`, `oci:${dir}:image`], { capture: true });
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]!.digest;
  rmSync(dir, { recursive: true, force: true });
  return digest;
}

// ------------------------------------------------------------------------- command line

/** Deletes the clone's container storage. containers/storage keeps its overlay directory
 *  mounted, so `rm -rf .cache` alone fails with EBUSY: podman unmounts and removes it. */
export function cleanStorage(): void {
  spawnSync('buildah', ['rm', '--all'], { env: containersEnv(), stdio: 'ignore' });
  run('podman', ['system', 'reset', '--force']);
  rmSync(join(root, '.cache', 'containers'), { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const name = argv.find((a) => !a.startsWith('--')) ?? 'redis';
  if (argv.includes('--clean')) {
    cleanStorage();
    console.log('image: container storage and stand-ins removed from .cache/');
    process.exit(0);
  }
  try {
    const built = buildImage(name, { noCache: argv.includes('--no-cache'), rebuildBases: argv.includes('--rebuild-bases') });
    const size = podman(['image', 'inspect', '--format', '{{.Size}}', built.tag]);
    console.log(`${built.tag}\n  id      ${built.id}\n  digest  ${built.digest}\n  size    ${(Number(size) / 1e6).toFixed(0)} MB\n  time    bases ${built.seconds.bases.toFixed(0)} s, image ${built.seconds.image.toFixed(0)} s`);
    console.log(`run it:  CONTAINERS_CONF=${containersEnv().CONTAINERS_CONF} CONTAINERS_STORAGE_CONF=${containersEnv().CONTAINERS_STORAGE_CONF} podman run --rm ${built.tag} --help`);
  } catch (e) {
    console.error((e as Error).message);
    process.exitCode = 1;
  }
}
