// The `tunnel` entry of the listener table: its config side (src/config/listeners/tunnel.ts) and
// start() in ./start.ts.
import { type TunnelConfig, tunnelConfigType } from '../../../config/listeners/tunnel.ts';
import type { ListenerType } from '../../listener.ts';
import { tunnelRuntime } from './start.ts';

export const tunnelType: ListenerType<TunnelConfig> = { ...tunnelConfigType, ...tunnelRuntime };
