// The PSK module's public surface (docs/listeners.md, `psk`): share combination and the TLS-PSK proxy.
export { COMBINE_METHODS, combineShares, KEY_BYTES, type CombineMethod, type CombineSpec, type Share } from './combine.ts';
export { formatHostPort, parseHostPort, type HostPort } from '../../../lib/address.ts';
export { TIMEOUT_DEFAULTS, type ProxyTimeouts as PskTimeouts } from '../../connection.ts';
export { READY_DEFAULTS, waitForPort, type ReadyOptions } from '../../ready.ts';
export { MAX_CONNECTIONS_DEFAULT, startPskProxy, type PskClientOptions, type PskProxy, type PskProxyOptions, type PskServerOptions } from './proxy.ts';
export type { ProxyStats as PskStats } from '../../stats.ts';
export { TLS12_PSK_SUITES, TLS13_SUITES, type PskTlsOptions } from './tls-options.ts';
