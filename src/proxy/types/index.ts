// The listener types, by the `type:` that selects them (docs/listeners.md `listeners:`). Each entry
// brings its own config schema and start(); the engine and the config know no type by name.
import type { ListenerType } from '../listener.ts';
import { httpProxyType } from './http-proxy/start.ts';
import { metadataType } from './metadata/start.ts';
import { pskType } from './psk/type.ts';
import { tlsType } from './tls/type.ts';
import { tunnelType } from './tunnel/start.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry checks its own config
export type AnyListenerType = ListenerType<any>;

export const LISTENER_TYPES: Readonly<Record<string, AnyListenerType>> = {
  psk: pskType,
  tls: tlsType,
  'http-proxy': httpProxyType,
  metadata: metadataType,
  tunnel: tunnelType,
};
