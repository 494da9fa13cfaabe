// Starting a psk listener (no schema here: this runs in worker threads too, which need not load
// zod): shares combined into keys at start and on reload, then the TLS-PSK proxy of ./proxy.ts.
// The caller has waited for the upstream.
import type { ListenerEnv, ListenerHandle } from '../../listener.ts';
import { metrics } from '../../stats.ts';
import { combineShares } from './combine.ts';
import type { PskListenerConfig } from '../../../config/listeners/psk.ts';
import { startPskProxy } from './proxy.ts';
import { combineThreshold } from './threshold.ts';

/**
 * identity → combined key; the caller wipes them. Throws (65/69/78) naming the share at fault.
 * A shamir share that was not read is an empty secret (the fetch stage said why).
 */
export async function combineKeys(c: PskListenerConfig, secret: (name: string) => Buffer): Promise<Map<string, Buffer>> {
  const keys = new Map<string, Buffer>();
  try {
    for (const [identity, ident] of Object.entries(c.identities)) {
      const shares = ident.shares.map((name) => ({ name, value: secret(name) }));
      const key = ident.combine === 'shamir'
        ? await combineThreshold(shares, { method: 'shamir', threshold: ident.threshold!, salt: ident.salt!, info: ident.info!, verify: ident.verify }, identity)
        : combineShares(shares, ident.combine === 'hkdf-sha256' ? { method: ident.combine, salt: ident.salt!, info: ident.info! } : { method: ident.combine }, identity);
      keys.set(identity, key);
    }
  } catch (err) {
    wipe(keys);
    throw err;
  }
  return keys;
}

function wipe(keys: Map<string, Buffer>): void {
  for (const k of keys.values()) k.fill(0);
}

export async function startPsk(c: PskListenerConfig, env: ListenerEnv): Promise<ListenerHandle> {
  const field = env.field ?? `listeners.${env.name}`;
  const keys = await combineKeys(c, env.secret);
  env.log.info({ identities: [...keys.keys()], mode: c.mode }, 'PSK keys combined');
  const common = {
    field,
    listen: c.listen,
    connect: c.connect,
    tls: { tls12: c.tls12 },
    timeouts: { handshakeMs: c.handshakeTimeout, idleMs: c.idleTimeout },
    maxConnections: c.maxConnections,
    log: env.log,
    signal: env.signal,
    ...(env.reusePort ? { reusePort: true } : {}),
  };
  try {
    const proxy = c.mode === 'server'
      ? await startPskProxy({ ...common, mode: 'server', identities: keys, ready: false })
      : await startPskProxy({ ...common, mode: 'client', identity: keys.keys().next().value!, key: keys.values().next().value! });
    return {
      address: proxy.address,
      stats: () => metrics(proxy.stats()),
      async reload() {
        const fresh = await combineKeys(c, env.secret);
        try {
          proxy.rekey(fresh);
        } finally {
          wipe(fresh);
        }
      },
      close: () => proxy.close(),
    };
  } finally {
    wipe(keys); // the proxy keeps its own copies
  }
}
