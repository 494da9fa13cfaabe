// The program's environment for a metadata listener with `env: true`: every variable the client
// libraries read for the metadata server's address (Node gcp-metadata and newer Python:
// GCE_METADATA_HOST; Python google-auth 1.x: GCE_METADATA_ROOT for data, GCE_METADATA_IP for its
// detection ping).
import { formatHostPort } from '../../../lib/address.ts';
import type { HostPort } from '../../listener.ts';
import type { MetadataConfig } from './start.ts';

export function metadataEnv(config: Pick<MetadataConfig, 'env'>, address: HostPort): Record<string, string> {
  if (!config.env) return {};
  const hp = formatHostPort(address);
  return { GCE_METADATA_HOST: hp, GCE_METADATA_IP: hp, GCE_METADATA_ROOT: hp };
}
