// A tee-init boot against the emulated Confidential Space world: the fakes run in the test
// process, tee-init (the real bundle) in its own, configured by a real config file.
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWorld, type EmulatedWorld, type WorldOptions } from '../fakes/world.ts';
import { startInit, type Started } from './init.ts';

export interface Boot {
  world: EmulatedWorld;
  /** A tmpfs directory for this test: the config, marker files and the output dir live here. */
  dir: string;
  /** Where tee-init is told to materialize (dir/out); it must not exist after any exit. */
  outDir: string;
  /** Exists once a child started (the default commands touch it). */
  marker: string;
  /** The default secrets: ca (bob), cert and key (alice), share_a (alice, memory), share_b (bob, memory). */
  values: Record<string, Buffer>;
  config(overrides?: Record<string, unknown>): Record<string, unknown>;
  writeConfig(config: Record<string, unknown>): string;
  start(config: Record<string, unknown>, args?: string[], env?: Record<string, string>): Started;
  /** Nothing of the output dir left, and the test dir holds only what the test wrote. */
  leftovers(): string[];
  close(): Promise<void>;
}

export const SHARE_A = '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90';
export const SHARE_B = 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2';

/**
 * `pem` supplies real certificate material when a test needs it (PEM checks run on every
 * secret that looks like PEM); by default the values are opaque bytes.
 */
export async function boot(options: WorldOptions & { pem?: { ca: Buffer; cert: Buffer; key: Buffer } } = {}): Promise<Boot> {
  const world = await startWorld(options);
  const dir = mkdtempSync('/dev/shm/tee-init-boot-');
  const outDir = join(dir, 'out');
  const marker = join(dir, 'child-started');
  const values: Record<string, Buffer> = {
    ca: options.pem?.ca ?? Buffer.from(`ca-bytes-${Math.random().toString(36).slice(2)}`),
    cert: options.pem?.cert ?? Buffer.from(`cert-bytes-${Math.random().toString(36).slice(2)}`),
    key: options.pem?.key ?? Buffer.from(`key-bytes-${Math.random().toString(36).slice(2)}`),
    share_a: Buffer.from(`${SHARE_A}\n`),
    share_b: Buffer.from(`${SHARE_B}\n`),
  };
  world.addSecret('projects/bob-proj/secrets/ca', values.ca!);
  world.addSecret('projects/alice-proj/secrets/server-cert', [{ data: Buffer.from('old cert') }, { data: values.cert! }]);
  world.addSecret('projects/alice-proj/secrets/server-key', values.key!);
  world.addSecret('projects/alice-proj/secrets/alice_psk', values.share_a!);
  world.addSecret('projects/bob-proj/secrets/bob_psk', values.share_b!);

  const written: string[] = [];
  const b: Boot = {
    world,
    dir,
    outDir,
    marker,
    values,
    config(overrides = {}) {
      return {
        log: { level: 'debug' },
        attestation: { tokenFile: world.tokenFile, waitFor: '2s', require: { swname: 'CONFIDENTIAL_SPACE' } },
        credentials: {
          alice: { type: 'confidential-space', provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount },
          bob: { type: 'confidential-space', provider: world.providers.bob },
        },
        secrets: {
          ca: { source: 'gcp', ref: 'projects/bob-proj/secrets/ca/versions/latest', credentials: 'bob', file: 'ca.pem' },
          cert: { source: 'gcp', ref: 'projects/alice-proj/secrets/server-cert/versions/2', credentials: 'alice', file: 'server.crt', mode: '0440' },
          key: { source: 'gcp', ref: 'projects/alice-proj/secrets/server-key/versions/latest', credentials: 'alice', file: 'server.key' },
          share_a: { source: 'gcp', ref: 'projects/alice-proj/secrets/alice_psk/versions/latest', credentials: 'alice' },
          share_b: { source: 'gcp', ref: 'projects/bob-proj/secrets/bob_psk/versions/1', credentials: 'bob' },
        },
        fetch: { deadline: '5s', attemptTimeout: '1s', backoff: { initial: '20ms', max: '200ms' } },
        output: { dir: outDir },
        run: { command: ['sh', '-c', `touch ${marker}`] },
        endpoints: { sts: world.endpoints.sts, iamcredentials: world.endpoints.iamcredentials, secretmanager: world.endpoints.secretmanager, teeserver: world.endpoints.teeserver },
        ...overrides,
      };
    },
    writeConfig(config) {
      const path = join(dir, `config-${written.length}.json`);
      writeFileSync(path, JSON.stringify(config, null, 2));
      written.push(path);
      return path;
    },
    start(config, args = [], env = {}) {
      return startInit(['--config', b.writeConfig(config), ...args], { env: { NO_PROXY: '127.0.0.1,localhost', ...env } });
    },
    leftovers() {
      const expected = new Set([...written.map((p) => p.slice(dir.length + 1)), 'child-started']);
      return [...(existsSync(outDir) ? ['out/'] : []), ...readdirSync(dir).filter((f) => !expected.has(f) && f !== 'out')];
    },
    async close() {
      await world.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return b;
}
