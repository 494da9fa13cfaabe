// Today's TLS-PSK proxy (src/psk, configured by psk:) as a listener unit: a small adapter from
// PskProxy to the ListenerHandle contract of src/proxy/listener.ts. The listener engine of
// `listeners:` plugs in the same way: anything with a start function returning a ListenerHandle.
import type { ListenerHandle } from '../proxy/listener.ts';
import type { PskProxyOptions, PskStats } from '../psk/index.ts';
import type { ListenerUnitSpec } from './types.ts';

/** PskStats under metric-style names (counters end in _total). */
const METRIC_NAMES: Record<keyof PskStats, string> = {
  active: 'connections_active',
  total: 'connections_total',
  established: 'connections_established_total',
  handshakeFailures: 'handshake_failures_total',
  upstreamFailures: 'upstream_failures_total',
  rejected: 'connections_rejected_total',
  idleTimeouts: 'idle_timeouts_total',
  bytesFromClient: 'bytes_from_client_total',
  bytesToClient: 'bytes_to_client_total',
};

export function pskMetrics(stats: PskStats): Record<string, number> {
  return Object.fromEntries(Object.entries(stats).map(([k, v]) => [METRIC_NAMES[k as keyof PskStats] ?? k, v]));
}

export function pskListenerUnit(name: string, options: PskProxyOptions, after: readonly string[]): ListenerUnitSpec {
  return {
    kind: 'listener',
    name,
    after,
    async start(signal): Promise<ListenerHandle> {
      const { startPskProxy } = await import('../psk/index.ts');
      const proxy = await startPskProxy({ ...options, signal });
      return {
        address: proxy.address,
        stats: () => pskMetrics(proxy.stats()),
        reload: () => Promise.reject(new Error('the psk listener reloads nothing yet: its keys are combined once at boot')),
        close: () => proxy.close(),
      };
    },
  };
}
