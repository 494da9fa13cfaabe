// The `psk` entry of the listener table: its schema and what it needs; start() in ./start.ts.
import { parseHostPort } from '../../../lib/address.ts';
import type { ListenerType } from '../../listener.ts';
import { type PskListenerConfig, pskListenerSchema, shareQuorums } from './config.ts';
import { combineKeys, startPsk } from './start.ts';

export const pskType: ListenerType<PskListenerConfig> = {
  type: 'psk',
  schema: pskListenerSchema,
  secrets: (c) => [...new Set(Object.values(c.identities).flatMap((i) => i.shares))],
  quorums: shareQuorums,
  credentials: () => [],
  actsForWorkload: (c) => (c.mode === 'client' ? 'a psk listener in client mode connects with the workload\'s pre-shared key' : undefined),
  upstream: (c) => (c.mode === 'server' ? parseHostPort(c.connect, 'connect') : undefined),
  async check(c, secret) {
    for (const k of (await combineKeys(c, secret)).values()) k.fill(0);
  },
  start: startPsk,
};
