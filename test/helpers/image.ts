// Shared by test/image/*.image.ts: the container tools, podman on the clone's private storage
// (scripts/image.ts), a container's output line by line, and the check that no secret was printed.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { TestContext } from 'node:test';
import { containersEnv } from '../../scripts/image.ts';
import { Lines } from './lines.ts';
import type { Pki } from './pki.ts';
import { isRoot, needs } from './tools.ts';

const TOOLS: [string, string][] = [
  ['buildah', 'apt-get install buildah'],
  ['podman', 'apt-get install podman'],
  ['runc', 'apt-get install runc'],
  ['skopeo', 'apt-get install skopeo'],
  ['mmdebstrap', 'apt-get install mmdebstrap'],
  ['openssl', 'apt-get install openssl'],
];

/** Root and the container tools, plus `more` (the variant's client); in CI a failure. */
export function ready(t: TestContext, more: [string, string][]): boolean {
  if (!isRoot) {
    const message = 'building and running images needs root (rootful podman with private storage)';
    if (process.env.CI) throw new Error(`${message}: CI runs as root`);
    t.skip(message);
    return false;
  }
  return [...TOOLS, ...more].every(([tool, install]) => needs(t, tool, install));
}

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}
export const podman = (args: string[]): Ran => {
  const r = spawnSync('podman', args, { env: containersEnv(), encoding: 'utf8', maxBuffer: 16 << 20 });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
};
export const podmanOk = (args: string[]): string => {
  const r = podman(args);
  assert.equal(r.status, 0, `podman ${args.join(' ')}:\n${r.stderr}`);
  return r.stdout;
};

/** The container's output, stdout (the program) and stderr (tee-init's log) together, line by
 *  line (`podman logs -f`), to wait for a line rather than sleep. */
export function follow(name: string): { out: Lines; stop: () => void } {
  const proc = spawn('podman', ['logs', '-f', name], { env: containersEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const both = new PassThrough();
  proc.stdout.pipe(both, { end: false });
  proc.stderr.pipe(both);
  return { out: new Lines(both), stop: () => proc.kill() };
}

/** No line of the PEM files in anything the container printed (tee-init at its configured
 *  level, the program) nor in its recorded command line and environment. */
export function assertNothingPrinted(name: string, pems: string[]): string {
  const all = spawnSync('podman', ['logs', name], { env: containersEnv(), encoding: 'utf8', maxBuffer: 16 << 20 });
  const printed = `${all.stdout}${all.stderr}${podmanOk(['inspect', name])}`;
  for (const f of pems) {
    for (const line of readFileSync(f, 'utf8').split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) {
      assert.ok(!printed.includes(line), `${f}: a line of it was printed by the container`);
    }
  }
  return printed;
}

/** Starts IMG detached as NAME as the image tests run it (Confidential Space's shape, file
 *  secrets instead of a cloud): the PKI's CA and server pair in a read-only /secrets, CONFIG as
 *  the config, SHM (a host tmpfs directory, so the test sees what is left there) as /dev/shm,
 *  PORT published on the host's loopback. Returns the follower of its output. */
export function runWithFileSecrets(img: string, name: string, o: { work: string; pki: Pki; config: string; shm: string; port: number }): { out: Lines; stop: () => void } {
  const secrets = join(o.work, 'secrets');
  mkdirSync(secrets, { mode: 0o700 });
  for (const f of ['ca.crt', 'server.crt', 'server.key']) copyFileSync(join(o.pki.dir, f), join(secrets, f));
  writeFileSync(join(o.work, 'tee-init.yaml'), o.config);
  chmodSync(o.shm, 0o1777);
  podmanOk([
    'run', '-d', '--name', name,
    '-p', `127.0.0.1::${o.port}`,
    '-v', `${secrets}:/secrets:ro`,
    '-v', `${join(o.work, 'tee-init.yaml')}:/config/tee-init.yaml:ro`,
    '-v', `${o.shm}:/dev/shm`,
    '-e', 'TEE_INIT_CONFIG=/config/tee-init.yaml',
    img,
  ]);
  return follow(name);
}

/** The host port podman published for the container's PORT. */
export const publishedPort = (name: string, port: number): number => Number(/:(\d+)$/.exec(podmanOk(['port', name, `${port}/tcp`]))![1]);
