// The one entry point: validates typed options, waits for the upstream (server mode), opens the
// listener, and returns a handle with the bound address, live stats and close().
import { once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import { configError } from '../../../errors.ts';
import type { Log } from '../../../log.ts';
import { formatHostPort, type HostPort, toHostPort } from '../../address.ts';
import { createPskClient } from './client.ts';
import { type ModeContext, type PskTimeouts, TIMEOUT_DEFAULTS } from '../../connection.ts';
import { type ReadyOptions, waitForPort } from '../../ready.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn, type LogLimit } from '../../log-limit.ts';
import { createPskServer } from './server.ts';
import { emptyStats, type PskStats } from '../../stats.ts';
import { type PskTlsOptions, TLS12_PSK_SUITES, TLS13_SUITES } from './tls-options.ts';

interface CommonOptions {
  /** Where the proxy listens: "host:port" ("[::1]:8081" for IPv6) or {host, port}; port 0 = any free port. */
  listen: HostPort | string;
  /** Server mode: the program's plaintext port. Client mode: the remote TLS-PSK peer. */
  connect: HostPort | string;
  tls?: PskTlsOptions;
  timeouts?: PskTimeouts;
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
  stats(): PskStats;
  /** Stops listening, destroys every open connection, wipes the proxy's key copies. Idempotent. */
  close(): Promise<void>;
}

export const MAX_CONNECTIONS_DEFAULT = 1000;
const MAX_IDENTITY_BYTES = 128; // OpenSSL's PSK_MAX_IDENTITY_LEN
const MIN_KEY_BYTES = 16; // what stunnel also requires
const MAX_KEY_BYTES = 256; // OpenSSL's PSK_MAX_PSK_LEN

export async function startPskProxy(options: PskProxyOptions): Promise<PskProxy> {
  const { log, signal } = options;
  const mode = options.mode;
  if (mode !== 'server' && mode !== 'client') throw configError(`psk.mode must be server or client, got ${JSON.stringify(mode)}`);
  const listen = toHostPort(options.listen, 'psk.listen', true);
  const upstream = toHostPort(options.connect, 'psk.connect');
  const timeouts = checkTimeouts(options.timeouts);
  const maxConnections = options.maxConnections ?? MAX_CONNECTIONS_DEFAULT;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) throw configError(`psk.maxConnections must be a whole number ≥ 1, got ${maxConnections}`);
  const tls = { tls12: options.tls?.tls12 === true };

  // Private copies, wiped on close().
  const keys: Buffer[] = [];
  const copy = (key: Uint8Array, field: string) => {
    if (!(key instanceof Uint8Array) || key.byteLength < MIN_KEY_BYTES || key.byteLength > MAX_KEY_BYTES) {
      throw configError(`${field}: the key must be ${MIN_KEY_BYTES}-${MAX_KEY_BYTES} bytes`);
    }
    const k = Buffer.from(key);
    keys.push(k);
    return k;
  };
  const stats = emptyStats();
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const logLimit = { ...LOG_LIMIT_DEFAULTS, ...options.logLimit };
  const ctx: ModeContext = {
    upstream, timeouts, log, stats, track,
    warnHandshake: limitedWarn(log, 'psk handshake failures', logLimit),
    warnUpstream: limitedWarn(log, mode === 'server' ? 'psk upstream failures' : 'psk remote peer failures', logLimit),
  };

  const wipe = () => {
    for (const k of keys) k.fill(0);
  };

  let server: Server;
  let identityNames: string[];
  try {
    if (mode === 'server') {
      const identities = new Map<string, Buffer>();
      for (const [id, key] of options.identities ?? []) {
        checkIdentity(id, `psk.identities.${id}`);
        identities.set(id, copy(key, `psk.identities.${id}`));
      }
      if (identities.size === 0) throw configError('psk.identities: server mode needs at least one identity');
      identityNames = [...identities.keys()];
      server = createPskServer({ identities, tls }, ctx);
    } else {
      checkIdentity(options.identity, 'psk.identity');
      identityNames = [options.identity];
      server = createPskClient({ identity: options.identity, key: copy(options.key, 'psk.identity'), tls }, ctx);
    }

    const ready = options.ready ?? (mode === 'server' ? {} : false);
    if (ready !== false) {
      const target = ready.target === undefined ? upstream : toHostPort(ready.target, 'psk.ready.target');
      await waitForPort(target, log, { ...ready, ...(signal ? { signal } : {}) });
    }

    server.maxConnections = maxConnections;
    let refusing = false;
    server.on('connection', (raw: Socket) => {
      stats.total++;
      stats.active++;
      track(raw);
      raw.once('close', () => {
        stats.active--;
        if (refusing && stats.active < maxConnections) {
          refusing = false;
          log.info({ maxConnections, rejected: stats.rejected }, 'psk proxy below its connection limit again');
        }
      });
    });
    server.on('drop', (info?: { remoteAddress?: string; remotePort?: number }) => {
      stats.rejected++;
      // Once per episode, not once per refused connection: a flood must not become a log flood.
      if (!refusing) {
        refusing = true;
        log.warn({ maxConnections, peer: info ? `${info.remoteAddress}:${info.remotePort}` : undefined }, 'psk connection limit reached; refusing new connections');
      }
    });
    await listenOn(server, listen);
    // After listen, errors are per accept (EMFILE, ENFILE): the listener keeps going, and an
    // unhandled 'error' would kill the init.
    server.on('error', (err: NodeJS.ErrnoException) => log.error({ reason: err.code ?? err.message }, 'psk listener error'));
  } catch (err) {
    wipe();
    throw err;
  }

  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
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
    close() {
      closing ??= (async () => {
        // The set holds only sockets that have not emitted 'close' yet (track() removes them
        // on 'close'); waiting for each one settles stats and file descriptors before returning.
        const closed = [once(server, 'close'), ...[...sockets].map((s) => once(s, 'close'))];
        server.close();
        for (const s of sockets) s.destroy();
        await Promise.all(closed);
        wipe();
        log.info({ mode, ...stats }, 'psk proxy closed');
      })();
      return closing;
    },
  };
}

function checkTimeouts(t: PskTimeouts = {}): Required<PskTimeouts> {
  const out = { ...TIMEOUT_DEFAULTS, ...Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined)) };
  for (const [k, v] of Object.entries(out)) {
    const min = k === 'idleMs' ? 0 : 1;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw configError(`psk.timeouts.${k} must be a number of ms ≥ ${min}, got ${v}`);
  }
  return out;
}

function checkIdentity(id: string, field: string): void {
  if (typeof id !== 'string' || id === '' || Buffer.byteLength(id, 'utf8') > MAX_IDENTITY_BYTES) {
    throw configError(`${field}: an identity must be 1-${MAX_IDENTITY_BYTES} bytes of text`);
  }
}

async function listenOn(server: Server, { host, port }: HostPort): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(configError(`psk.listen ${formatHostPort({ host, port })}: cannot listen (${err.code ?? err.message}); choose a free port on an address of this machine`, {
        code: err.code,
      }));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
