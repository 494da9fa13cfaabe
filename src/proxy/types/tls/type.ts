// The `tls` entry of the listener table: mutual TLS in front of a program (strict, permissive)
// or out to a remote peer (client). Its schema and what it needs; start() in ./start.ts.
import { parseHostPort } from '../../../lib/address.ts';
import type { ListenerType } from '../../listener.ts';
import { type TlsListenerConfig, tlsListenerSchema } from './config.ts';
import { loadMaterial } from './context.ts';
import { startTls } from './start.ts';

export const tlsType: ListenerType<TlsListenerConfig> = {
  type: 'tls',
  schema: tlsListenerSchema,
  secrets: (c) => [...new Set([c.tls.cert, c.tls.key, c.tls.ca])],
  credentials: () => [],
  actsForWorkload: (c) => (c.mode === 'client' ? 'a tls listener in client mode presents the workload\'s client certificate' : undefined),
  upstream: (c) => (c.mode === 'client' ? undefined : parseHostPort(c.connect, 'connect')),
  check(c, secret, field) {
    loadMaterial(c, secret, field);
  },
  start: startTls,
};
