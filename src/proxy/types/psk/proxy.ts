// The one entry point: validates typed options, waits for the upstream (server mode), opens the
// listener, and returns a handle with the bound address, live stats and close().
import type { Server } from 'node:net';
import { configError } from '../../../lib/errors.ts';
import type { Log } from '../../../lib/log.ts';
import { formatHostPort, type HostPort, toHostPort } from '../../../lib/address.ts';
import type { ProxyTimeouts } from '../../connection.ts';
import { checkMaxConnections, checkTimeouts, createEngine } from '../../engine.ts';
import type { LogLimit } from '../../../lib/log-limit.ts';
import { type ReadyOptions, waitForPort } from '../../ready.ts';
import type { ProxyStats } from '../../stats.ts';
import { createPskClient } from './client.ts';
import { createPskServer } from './server.ts';
import { type PskTlsOptions, TLS12_PSK_SUITES, TLS13_SUITES } from './tls-options.ts';

interface CommonOptions {
  /** Where the proxy listens: "host:port" ("[::1]:8081" for IPv6) or {host, port}; port 0 = any free port. */
  listen: HostPort | string;
  /** Server mode: the program's plaintext port. Client mode: the remote TLS-PSK peer. */
  connect: HostPort | string;
  tls?: PskTlsOptions;
  timeouts?: ProxyTimeouts;
  /** Open connections (including those in handshake) beyond which new ones are refused at accept. Default 1000. */
  maxConnections?: number;
  /**
   * Wait until this address (default: `connect`) accepts TCP before listening. Default: on in
   * server mode (the child is starting), off in client mode (a probe would be a failed
   * handshake in the remote peer's log). `false` turns it off.
   */
  ready?: false | (ReadyOptions & { target?: HostPort | string });
  log: Log;
  /** Aborts start-up (the readiness wait); after start, call close(). */
  signal?: AbortSignal;
  /** Per-connection failure lines: at most `burst` per `windowMs` of each kind, then a count. */
  logLimit?: Partial<LogLimit>;
  /** The config path named in errors. Default `psk` (the `psk:` shorthand). */
  field?: string;
  /** Bind with SO_REUSEPORT (several listeners on one port, one per worker thread). */
  reusePort?: boolean;
}

export interface PskServerOptions extends CommonOptions {
  mode: 'server';
  /** identity → key (16-256 bytes; combineShares gives 32). Copied: the caller may wipe its buffers. */
  identities: ReadonlyMap<string, Uint8Array>;
}

export interface PskClientOptions extends CommonOptions {
  mode: 'client';
  identity: string;
  /** 16-256 bytes. Copied: the caller may wipe its buffer. */
  key: Uint8Array;
}

export type PskProxyOptions = PskServerOptions | PskClientOptions;

export interface PskProxy {
  readonly mode: 'server' | 'client';
  /** The address actually bound (the real port when `listen` asked for port 0). */
  readonly address: HostPort;
  /** A snapshot of the counters. */
  stats(): ProxyStats;
  /** Connections ended by a fault in their handling (`connection_faults_total`). */
  readonly faults: number;
  /** New keys for new connections (same identities); open connections keep their session. */
  rekey(keys: ReadonlyMap<string, Uint8Array>): void;
  /** Stops listening, destroys every open connection, wipes the proxy's key copies. Idempotent. */
  close(): Promise<void>;
}

export { MAX_CONNECTIONS_DEFAULT } from '../../engine.ts';
const MAX_IDENTITY_BYTES = 128; // OpenSSL's PSK_MAX_IDENTITY_LEN
const MIN_KEY_BYTES = 16; // what stunnel also requires
const MAX_KEY_BYTES = 256; // OpenSSL's PSK_MAX_PSK_LEN

export async function startPskProxy(options: PskProxyOptions): Promise<PskProxy> {
  const { log, signal } = options;
  const mode = options.mode;
  const field = options.field ?? 'psk';
  if (mode !== 'server' && mode !== 'client') throw configError(`${field}.mode must be server or client, got ${JSON.stringify(mode)}`);
  const listen = toHostPort(options.listen, `${field}.listen`, true);
  const upstream = toHostPort(options.connect, `${field}.connect`);
  const timeouts = checkTimeouts(options.timeouts, `${field}.timeouts`);
  const maxConnections = checkMaxConnections(options.maxConnections, field);
  const tls = { tls12: options.tls?.tls12 === true };

  // Private copies, wiped on close() (and the old ones on rekey()).
  const keys: Buffer[] = [];
  const copy = (key: Uint8Array, where: string) => {
    if (!(key instanceof Uint8Array) || key.byteLength < MIN_KEY_BYTES || key.byteLength > MAX_KEY_BYTES) {
      throw configError(`${where}: the key must be ${MIN_KEY_BYTES}-${MAX_KEY_BYTES} bytes`);
    }
    const k = Buffer.from(key);
    keys.push(k);
    return k;
  };
  const engine = createEngine({
    label: 'psk', field, upstream, timeouts, log, logLimit: options.logLimit, upstreamKind: mode === 'server' ? 'upstream' : 'remote peer',
  });
  const { stats } = engine;
  const { fault } = engine.ctx;
  const wipe = () => {
    for (const k of keys) k.fill(0);
  };

  let server: Server;
  let identityNames: string[];
  // Read at each handshake: rekey() swaps the entries for new connections.
  const identities = new Map<string, Buffer>();
  let address: HostPort;
  try {
    if (mode === 'server') {
      for (const [id, key] of options.identities ?? []) {
        checkIdentity(id, `${field}.identities.${id}`);
        identities.set(id, copy(key, `${field}.identities.${id}`));
      }
      if (identities.size === 0) throw configError(`${field}.identities: server mode needs at least one identity`);
      identityNames = [...identities.keys()];
      server = createPskServer({ identities, tls, fault }, engine.ctx);
    } else {
      checkIdentity(options.identity, `${field}.identity`);
      identityNames = [options.identity];
      identities.set(options.identity, copy(options.key, `${field}.identity`));
      server = createPskClient({ identity: options.identity, keys: identities, tls, fault }, engine.ctx);
    }

    const ready = options.ready ?? (mode === 'server' ? {} : false);
    if (ready !== false) {
      const target = ready.target === undefined ? upstream : toHostPort(ready.target, `${field}.ready.target`);
      await waitForPort(target, log, { field: `${field}.connect`, ...ready, ...(signal ? { signal } : {}) });
    }
    address = await engine.serve(server, listen, maxConnections, options.reusePort);
  } catch (err) {
    await engine.close();
    wipe();
    throw err;
  }

  log.info(
    {
      mode, listen: formatHostPort(address), connect: formatHostPort(upstream), identities: identityNames,
      tls: tls.tls12 ? 'TLSv1.2-1.3' : 'TLSv1.3', suites: [...TLS13_SUITES, ...(tls.tls12 ? TLS12_PSK_SUITES : [])],
      maxConnections, timeouts,
    },
    'psk proxy listening',
  );

  let closing: Promise<void> | undefined;
  return {
    mode,
    address,
    stats: () => ({ ...stats }),
    get faults() {
      return fault.count;
    },
    rekey(next) {
      const fresh = new Map<string, Buffer>();
      try {
        for (const id of identityNames) {
          const k = next.get(id);
          if (!k) throw configError(`${field}: the new keys lack identity ${JSON.stringify(id)}`);
          fresh.set(id, copy(k, `${field}.identities.${id}`));
        }
      } catch (err) {
        for (const k of fresh.values()) k.fill(0);
        throw err;
      }
      // Open sessions hold their own derived secrets in OpenSSL: the old key copies can go.
      for (const [id, k] of fresh) {
        identities.get(id)?.fill(0);
        identities.set(id, k);
      }
      log.info({ identities: identityNames }, 'psk keys replaced for new connections');
    },
    close() {
      closing ??= (async () => {
        await engine.close();
        wipe();
        log.info({ mode, ...stats }, 'psk proxy closed');
      })();
      return closing;
    },
  };
}

function checkIdentity(id: string, field: string): void {
  if (typeof id !== 'string' || id === '' || Buffer.byteLength(id, 'utf8') > MAX_IDENTITY_BYTES) {
    throw configError(`${field}: an identity must be 1-${MAX_IDENTITY_BYTES} bytes of text`);
  }
}
