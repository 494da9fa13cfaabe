// `type: tunnel` (docs/listeners.md `listeners:`, issue 13): TCP over HTTP/2 streams, both ends. Client
// mode turns local TCP connections into streams to a URL (Cloud Run: POST); server mode turns
// streams back into TCP connections to the program. The config side is src/config/listeners/tunnel.ts.
import { once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';
import { configError } from '../../../lib/errors.ts';
import { formatHostPort, parseHostPort } from '../../../lib/address.ts';
import { createFaultSink } from '../../boundary.ts';
import { limitConnections } from '../../engine.ts';
import { accepting } from '../../../lib/thread.ts';
import type { HostPort, ListenerHandle, ListenerType } from '../../listener.ts';
import { createTunnelClient } from './client.ts';
import { emptyTunnelStats, metricStats } from './common.ts';
import type { TunnelConfig } from '../../../config/listeners/tunnel.ts';
import { createTunnelServer } from './server.ts';

/** The runtime side of `type: tunnel` (its entry in the table: ./type.ts). */
export const tunnelRuntime: Pick<ListenerType<TunnelConfig>, 'start'> = {
  async start(config, env): Promise<ListenerHandle> {
    const { log, name } = env;
    const listen = parseHostPort(config.listen, `listeners.${name}.listen`, true);
    const stats = emptyTunnelStats();
    // The failure boundary of one tunnel (server.ts, client.ts run every handler in it).
    const fault = createFaultSink(log, 'tunnel');
    const sockets = new Set<Socket>();
    const track = (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    };
    const mode = config.mode === 'server' ? createTunnelServer(config, env, stats, track, fault) : createTunnelClient(config, env, stats, fault);
    const server: Server = mode.server;
    // The limit is the listener's over all its worker threads (src/lib/thread.ts).
    limitConnections(server, config.maxConnections, {
      log, label: 'tunnel', fault,
      accepted(raw) {
        track(raw);
        if (config.mode === 'client') {
          stats.total++;
          stats.active++;
          raw.once('close', () => stats.active--);
        }
      },
      refused: () => stats.rejected++,
    });
    await listenOn(server, listen, name, env.reusePort === true);
    accepting(server);
    server.on('error', (err: NodeJS.ErrnoException) => log.error({ reason: err.code ?? err.message }, 'tunnel listener error'));
    const bound = server.address() as AddressInfo;
    const address: HostPort = { host: bound.address, port: bound.port };
    log.info(
      config.mode === 'server'
        ? { mode: 'server', listen: formatHostPort(address), connect: config.connect, h2c: config.h2c, path: config.path, methods: config.methods, bearer: config.bearer !== undefined, innerTls: config.inner !== undefined, maxStreams: config.maxStreams, handshakeTimeout: config.handshakeTimeout, keepalive: config.keepalive }
        : { mode: 'client', listen: formatHostPort(address), url: config.url, method: config.method, token: config.token?.kind, innerTls: config.inner !== undefined },
      'tunnel listening',
    );

    let closing: Promise<void> | undefined;
    return {
      address,
      stats: () => metricStats(stats, fault.count),
      async reload() {
        mode.reload();
        log.info('tunnel TLS material reloaded for new tunnels');
      },
      close() {
        closing ??= (async () => {
          const closed = [once(server, 'close'), ...[...sockets].map((s) => once(s, 'close'))];
          server.close();
          await mode.close();
          for (const s of sockets) s.destroy();
          await Promise.all(closed);
          log.info({ mode: config.mode, ...metricStats(stats, fault.count) }, 'tunnel closed');
        })();
        return closing;
      },
    };
  },
};

async function listenOn(server: Server, { host, port }: HostPort, name: string, reusePort: boolean): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(configError(`listeners.${name}.listen ${formatHostPort({ host, port })}: cannot listen (${err.code ?? err.message}); choose a free port on an address of this machine`));
    };
    server.once('error', onError);
    server.listen({ host, port, ...(reusePort ? { reusePort } : {}) }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
