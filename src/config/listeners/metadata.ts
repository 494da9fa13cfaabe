// `type: metadata`: the config of the GCE metadata server on loopback (docs/listeners.md,
// listeners): whose tokens, which scopes, and whether the program's environment points its
// client libraries here. The server is src/proxy/types/metadata/.
import { z } from 'zod';
import { formatHostPort, type HostPort } from '../../lib/address.ts';
import { headersTimeoutField, loopbackListen } from './loopback.ts';
import { CLOUD_PLATFORM } from './token.ts';
import type { ListenerConfigType } from './type.ts';

export const metadataSchema = z.strictObject({
  type: z.literal('metadata'),
  listen: loopbackListen,
  /** The credential whose tokens the program gets. */
  credentials: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, { error: 'must be the name of a configured credential' }),
  /** Scopes of every access token served (a client's ?scopes= does not change them). */
  scopes: z.array(z.string().min(1)).min(1).default([CLOUD_PLATFORM]),
  /** Override what the credential's config implies (service account email, its project). */
  email: z.string().min(3).optional(),
  projectId: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, { error: 'must be a project id' }).optional(),
  numericProjectId: z.string().regex(/^\d{1,20}$/, { error: 'must be a project number' }).optional(),
  /** Set GCE_METADATA_HOST (and GCE_METADATA_IP, GCE_METADATA_ROOT) in the program's environment. */
  env: z.boolean().default(false),
  /** A client that has not sent a whole request (head; GET has no body) within this gets 408 and is closed. */
  headersTimeout: headersTimeoutField,
  /** 1 (default): its own thread; 0: the init's thread. One is plenty (see defaultWorkers). */
  workers: z.number().int().min(0).max(1).optional(),
});
export type MetadataConfig = z.infer<typeof metadataSchema>;

// The program's environment for a metadata listener with `env: true`: every variable the client
// libraries read for the metadata server's address (Node gcp-metadata and newer Python:
// GCE_METADATA_HOST; Python google-auth 1.x: GCE_METADATA_ROOT for data, GCE_METADATA_IP for its
// detection ping).
export function metadataEnv(config: Pick<MetadataConfig, 'env'>, address: HostPort): Record<string, string> {
  if (!config.env) return {};
  const hp = formatHostPort(address);
  return { GCE_METADATA_HOST: hp, GCE_METADATA_IP: hp, GCE_METADATA_ROOT: hp };
}

export const metadataConfigType: ListenerConfigType<MetadataConfig> = {
  type: 'metadata',
  schema: metadataSchema,
  secrets: () => [],
  credentials: (c) => [c.credentials],
  upstream: () => undefined,
  // A few token requests a minute from one program's client libraries (tokens are cached in the
  // init's thread): one thread is plenty, and keeps its connection bound one server's count.
  defaultWorkers: 1,
  childEnv: (config, address) => metadataEnv(config, address),
};
