// The identity listeners' test bench: the emulated world (with a movable clock), a private
// Cloud Run-like service behind a test CA, real token sources against the fakes, and a real
// ListenerEnv to start listener types with, in the test process.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTokenSources, type ManagedTokenSources } from '../../src/credentials/tokens/index.ts';
import type { ListenerEnv } from '../../src/proxy/listener.ts';
import '../fakes/clients.ts';
import { startPrivateService, type PrivateService } from '../fakes/private-service.ts';
import { startWorld, type EmulatedWorld } from '../fakes/world.ts';
import { memoryLog, type MemoryLog } from './log.ts';
import { createPki, type Pki } from './pki.ts';

export const SERVICE_HOST = 'hello-abc.a.run.app';

export interface IdentityBench {
  world: EmulatedWorld;
  pki: Pki;
  service: PrivateService;
  tokens: ManagedTokenSources;
  logs: MemoryLog;
  /** Moves the shared clock (fake Google, the service's expiry check, the token caches). */
  advance(ms: number): void;
  now(): number;
  secrets: Record<string, Buffer>;
  env(name: string): ListenerEnv;
  credentials: Record<string, { type: 'confidential-space'; provider: string; serviceAccount?: string }>;
  close(): Promise<void>;
}

/** alice (through her service account) and bob (direct), as the config would name them. */
export function worldCredentials(world: EmulatedWorld) {
  return {
    alice: { type: 'confidential-space' as const, provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount! },
    bob: { type: 'confidential-space' as const, provider: world.providers.bob },
  };
}

/** Real token sources against the world's fakes, with fast retries and the given clock. */
export function worldTokenSources(world: EmulatedWorld, logs: MemoryLog, now: () => number): ManagedTokenSources {
  return createTokenSources(worldCredentials(world), {
    tokenFile: world.tokenFile,
    endpoints: { ...world.endpoints, teeserver: world.endpoints.teeserver! },
    teeserverTimeoutMs: 2000,
    log: logs.log,
    retry: { deadlineMs: 5000, initialBackoffMs: 10, maxBackoffMs: 100, attemptTimeoutMs: 2000 },
    now,
  });
}

export async function identityBench(options: { idTokenLifetimeS?: number } = {}): Promise<IdentityBench> {
  let offset = 0;
  const now = () => Date.now() + offset;
  const world = await startWorld({ now, ...(options.idTokenLifetimeS ? { idTokenLifetimeS: options.idTokenLifetimeS } : {}) });
  // Not /dev/shm: the demo test counts what appears there while it runs.
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-egress-'));
  const pki = createPki(dir, { serverSans: [`DNS:${SERVICE_HOST}`, 'DNS:*.a.run.app', 'DNS:api.b.run.app', 'IP:127.0.0.1'] });
  const service = await startPrivateService({
    url: `https://${SERVICE_HOST}`,
    // Other names the tests send to it, as Cloud Run's custom audiences.
    audiences: [...['concurrent', 'clock', 'bench'].map((n) => `https://${n}.a.run.app`), 'https://api.b.run.app'],
    cert: readFileSync(pki.server.cert),
    key: readFileSync(pki.server.key),
    jwks: world.gcp.googleKey.jwks,
    now,
  });
  const logs = memoryLog('trace');
  const credentials = worldCredentials(world);
  const tokens = worldTokenSources(world, logs, now);
  const secrets: Record<string, Buffer> = { service_ca: readFileSync(pki.ca.cert) };
  const abort = new AbortController();
  return {
    world,
    pki,
    service,
    tokens,
    logs,
    advance: (ms) => void (offset += ms),
    now,
    secrets,
    credentials,
    env: (name) => ({
      name,
      log: logs.log.child({ listener: name }),
      secret(n) {
        const v = secrets[n];
        if (!v) throw new Error(`secret ${n} is not configured`);
        return Buffer.from(v);
      },
      tokens,
      signal: abort.signal,
    }),
    async close() {
      abort.abort();
      tokens.close();
      await service.close();
      await world.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
