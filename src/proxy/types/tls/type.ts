// The `tls` entry of the listener table: its config side (src/config/listeners/tls.ts), the check
// that the certificate and key are usable, and start() in ./start.ts.
import { type TlsListenerConfig, tlsConfigType } from '../../../config/listeners/tls.ts';
import type { ListenerType } from '../../listener.ts';
import { loadMaterial } from './context.ts';
import { startTls } from './start.ts';

export const tlsType: ListenerType<TlsListenerConfig> = {
  ...tlsConfigType,
  check(c, secret, field) {
    loadMaterial(c, secret, field);
  },
  start: startTls,
};
