// The preset table: adding a preset is one entry here, one module beside this one and its
// templates in templates/.
import type { PresetName } from '../types.ts';
import { envoyHttp, envoyNetwork } from './envoy.ts';
import { envoyTunnelClient, envoyTunnelServer } from './envoy-tunnel.ts';
import { none } from './none.ts';
import { postgres } from './postgres.ts';
import type { Preset } from './preset.ts';
import { redis } from './redis.ts';

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  redis: redis,
  'envoy-http': envoyHttp,
  'envoy-network': envoyNetwork,
  'envoy-tunnel-client': envoyTunnelClient,
  'envoy-tunnel-server': envoyTunnelServer,
  postgres,
  none,
};
