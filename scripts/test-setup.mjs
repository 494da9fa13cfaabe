// Installs what the tests need beyond node_modules, so that `npm ci && npm test` is the whole
// set-up on a fresh Debian machine:
//  - Debian packages for the real peers: redis-server/redis-cli, stunnel, openssl, unshare, curl,
//    python3-requests and python3-google-auth, and the container tools test/image builds and
//    runs the image with (buildah, podman, runc...);
//    installed with apt-get when missing and running as root, otherwise named for you.
//  - Node 22 from the npm registry into .cache/node22: an older Node than the bundle supports
//    (package.json engines), to check that it refuses it in one line.
// Tests that need something still missing fail in CI (CI=true) and skip, saying so, elsewhere.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const NODE22_VERSION = '22.23.3';
const node22 = join(root, '.cache', 'node22', 'node_modules', 'node', 'bin', 'node');

const have = (tool) => spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;

// tool on PATH -> Debian package that provides it
const TOOLS = {
  'redis-server': 'redis-server',
  'redis-cli': 'redis-tools',
  'redis-benchmark': 'redis-tools',
  stunnel: 'stunnel4',
  openssl: 'openssl',
  unshare: 'util-linux',
  python3: 'python3', // a listener that never accepts, for the PSK connect-timeout test
  '/usr/bin/python3': 'python3', // Debian's, with ctypes renameat2: the racer of the hostile-child test
  setpriv: 'util-linux', // a child or init of another uid
  '/usr/bin/time': 'time', // the peak RSS of an init reading /dev/zero as a secret
  // test/image: build the image (stand-in bases from Debian packages) and run it
  buildah: 'buildah',
  podman: 'podman',
  runc: 'runc',
  skopeo: 'skopeo',
  mmdebstrap: 'mmdebstrap',
  iptables: 'iptables', // podman's published ports
  '/usr/lib/podman/netavark': 'netavark',
  '/usr/lib/podman/aardvark-dns': 'aardvark-dns',
  curl: 'curl', // the program behind the egress proxy
  go: 'golang-go', // an independent HTTP/2 peer (net/http) for the tunnel tests
};
// Python modules of Debian's /usr/bin/python3 -> package (the program in the identity tests).
const PY_MODULES = { requests: 'python3-requests', 'google.auth': 'python3-google-auth', h2: 'python3-h2' };
const havePy = (mod) => existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' }).status === 0;

// Things that are not a command on PATH: a check, and the Debian package that satisfies it.
const CHECKS = [
  // /metrics is validated by Prometheus's own text parser (test/integration/units-health.test.ts).
  [() => spawnSync('/usr/bin/python3', ['-c', 'import prometheus_client.parser'], { stdio: 'ignore' }).status === 0, 'python3-prometheus-client'],
  // PostgreSQL's server binaries live outside PATH (test/integration/postgres.test.ts).
  [() => existsSync('/usr/lib/postgresql/15/bin/postgres') && have('psql'), 'postgresql'],
];

const missing = [...new Set([
  ...Object.entries(TOOLS).filter(([tool]) => !have(tool)).map(([, pkg]) => pkg),
  ...CHECKS.filter(([ok]) => !ok()).map(([, pkg]) => pkg),
  ...Object.entries(PY_MODULES).filter(([mod]) => !havePy(mod)).map(([, pkg]) => pkg),
])];
if (missing.length > 0) {
  if (process.getuid?.() === 0 && have('apt-get')) {
    console.log(`test-setup: installing ${missing.join(' ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
    // Debian starts services on install; the tests start their own redis on their own ports.
    spawnSync('sh', ['-c', 'service redis-server stop >/dev/null 2>&1 || true; service postgresql stop >/dev/null 2>&1 || true'], { stdio: 'ignore' });
  } else {
    console.warn(`test-setup: missing ${missing.join(' ')}; install them (apt-get install -y ${missing.join(' ')}), or the tests that need them will ${process.env.CI ? 'fail' : 'skip'}`);
  }
}

const node22Version = () => spawnSync(node22, ['--version'], { encoding: 'utf8' }).stdout?.trim();
if (!existsSync(node22) || node22Version() !== `v${NODE22_VERSION}`) {
  console.log(`test-setup: installing Node ${NODE22_VERSION} into .cache/node22 (to test that the bundle refuses an older Node)`);
  const prefix = join(root, '.cache', 'node22');
  mkdirSync(prefix, { recursive: true });
  const r = spawnSync('npm', ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', `node@${NODE22_VERSION}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0 || node22Version() !== `v${NODE22_VERSION}`) {
    console.warn('test-setup: could not install Node 22; the older-Node refusal test will fail in CI');
  }
}
