// Secret Manager, through @google-cloud/secret-manager in REST mode (HTTP/1.1 JSON): the same
// transport in a TEE and against the loopback fakes; only the endpoint differs.
import type { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { cjsExports } from '../../lib/cjs.ts';
import type { Identity } from '../../credentials/identities.ts';

export interface AccessedVersion {
  data: Buffer;
  /** The resolved version name (projects/P/secrets/S/versions/N), also for `latest`. */
  name: string;
  crc32c: string | undefined;
}

const REGIONAL = /^projects\/[^/]+\/locations\/([^/]+)\//;

/** Where `ref` is served: the override when given, else the global or the regional endpoint. */
export function endpointFor(ref: string, override: string | undefined): URL {
  if (override) return new URL(override);
  const region = REGIONAL.exec(ref)?.[1];
  return new URL(region ? `https://secretmanager.${region}.rep.googleapis.com` : 'https://secretmanager.googleapis.com');
}

/** The URL a read of `ref` goes to, for messages (the one a 3 a.m. reader can test with curl). */
export function accessUrl(ref: string, override: string | undefined): string {
  return `${endpointFor(ref, override).origin}/v1/${ref}:access`;
}

export class SecretManagerAccess {
  readonly #clients = new Map<string, SecretManagerServiceClient>();
  readonly #override: string | undefined;
  #module: Promise<typeof import('@google-cloud/secret-manager/build/src/v1/secret_manager_service_client.js')> | undefined;

  constructor(override: string | undefined) {
    this.#override = override;
  }

  /**
   * Loads the client library ahead of the first request (it is large), in parallel with token
   * exchanges. The v1 client module alone: the package's index also loads 750 KiB of static
   * protobuf code and the v1beta2 client, neither of which the REST transport uses.
   */
  preload(): Promise<unknown> {
    this.#module ??= import('@google-cloud/secret-manager/build/src/v1/secret_manager_service_client.js');
    return this.#module;
  }

  async #client(identity: Identity, ref: string): Promise<SecretManagerServiceClient> {
    const url = endpointFor(ref, this.#override);
    const key = `${identity.name} ${url.origin}`;
    let client = this.#clients.get(key);
    if (!client) {
      await this.preload();
      const { SecretManagerServiceClient } = cjsExports(await this.#module!);
      const https = url.protocol === 'https:';
      client = new SecretManagerServiceClient({
        authClient: identity.client as never,
        apiEndpoint: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port ? Number(url.port) : https ? 443 : 80,
        protocol: https ? 'https' : 'http',
        fallback: true,
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  /** One attempt, no library-level retries: tee-init's own retry loop owns the deadline. */
  async access(identity: Identity, ref: string, timeoutMs: number): Promise<AccessedVersion> {
    const client = await this.#client(identity, ref);
    const [version] = await client.accessSecretVersion({ name: ref }, { timeout: timeoutMs, retry: null });
    const raw = version.payload?.data;
    const data = raw === undefined || raw === null ? Buffer.alloc(0) : typeof raw === 'string' ? Buffer.from(raw, 'base64') : Buffer.from(raw);
    const crc = version.payload?.dataCrc32c;
    return { data, name: version.name ?? ref, crc32c: crc === undefined || crc === null ? undefined : String(crc) };
  }

  close(): void {
    for (const c of this.#clients.values()) void c.close().catch(() => {});
    this.#clients.clear();
  }
}
