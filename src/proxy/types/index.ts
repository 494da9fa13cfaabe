// The listener types, by the `type:` that selects them (docs/listeners.md `listeners:`). Each entry
// is its config side (src/config/listeners/, the same keys) plus its material check and start();
// the engine and the config know no type by name.
import type { ListenerType } from '../listener.ts';
import { httpProxyType } from './http-proxy/type.ts';
import { metadataType } from './metadata/type.ts';
import { pskType } from './psk/type.ts';
import { tlsType } from './tls/type.ts';
import { tunnelType } from './tunnel/type.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry checks its own config
export type AnyListenerType = ListenerType<any>;

export const LISTENER_TYPES: Readonly<Record<string, AnyListenerType>> = {
  psk: pskType,
  tls: tlsType,
  'http-proxy': httpProxyType,
  metadata: metadataType,
  tunnel: tunnelType,
};

/** The type of a listener whose config passed the schema (so `type` is one of the table's). */
export function listenerRuntime(type: string): AnyListenerType {
  return LISTENER_TYPES[type]!;
}
