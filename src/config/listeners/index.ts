// The listener types' config side, by the `type:` that selects them (docs/listeners.md
// `listeners:`): what the config check, the plan and the boot read without starting a listener.
// The runtime table (check, start) is src/proxy/types/index.ts, with the same keys.
import { httpProxyConfigType } from './http-proxy.ts';
import { metadataConfigType } from './metadata.ts';
import { pskConfigType } from './psk.ts';
import { tlsConfigType } from './tls.ts';
import { tunnelConfigType } from './tunnel.ts';
import type { ListenerConfigType } from './type.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry checks its own config
export type AnyListenerConfigType = ListenerConfigType<any>;

export const LISTENER_CONFIGS: Readonly<Record<string, AnyListenerConfigType>> = {
  psk: pskConfigType,
  tls: tlsConfigType,
  'http-proxy': httpProxyConfigType,
  metadata: metadataConfigType,
  tunnel: tunnelConfigType,
};
