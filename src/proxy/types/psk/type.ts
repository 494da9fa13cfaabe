// The `psk` entry of the listener table: its config side (src/config/listeners/psk.ts), the check
// that the keys combine, and start() in ./start.ts.
import { type PskListenerConfig, pskConfigType } from '../../../config/listeners/psk.ts';
import type { ListenerType } from '../../listener.ts';
import { combineKeys, startPsk } from './start.ts';

export const pskType: ListenerType<PskListenerConfig> = {
  ...pskConfigType,
  async check(c, secret) {
    for (const k of (await combineKeys(c, secret)).values()) k.fill(0);
  },
  start: startPsk,
};
