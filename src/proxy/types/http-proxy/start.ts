// `type: http-proxy`: the egress proxy for the program's outbound calls (docs/listeners.md, listeners).
// The program sets HTTP_PROXY to it and calls http://svc-abc.a.run.app/...; configured routes
// are sent on over https with the route's token (a Google-signed ID token for a private Cloud
// Run service, an access token, an attestation token). Loopback only; never an open relay.
// The config side (schema, routes' rules, the program's env) is src/config/listeners/http-proxy.ts.
import type { Server } from 'node:http';
import { Agent } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext } from 'node:tls';
import type { HttpProxyConfig, HttpProxyRoute } from '../../../config/listeners/http-proxy.ts';
import { configError } from '../../../lib/errors.ts';
import { errorText } from '../../../lib/classify.ts';
import { formatHostPort, parseHostPort } from '../../../lib/address.ts';
import { createFaultSink, guard } from '../../boundary.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn } from '../../../lib/log-limit.ts';
import type { ListenerEnv, ListenerHandle, ListenerType } from '../../listener.ts';
import { tunnel } from './connect.ts';
import { forward, type ForwardContext, type LiveRoute, type ProxyCounters } from './forward.ts';
import { atDebug, boundedHttpServer, closeServer, countConnections, listenOn } from '../../loopback-http.ts';

function agentFor(r: HttpProxyRoute, i: number, env: ListenerEnv): Agent {
  // A copy of the CA bytes as text: the agent keeps it; the secret buffer stays the init's.
  const ca = r.ca === undefined ? undefined : env.secret(r.ca).toString('utf8');
  if (ca !== undefined) {
    // Unusable material fails here (start: a config error; reload: rejected, the old kept), not at the first request.
    try {
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
      createSecureContext({ ca });
    } catch (err) {
      throw configError(`listeners.${env.name}.routes[${i}].ca: secret ${r.ca} is not usable as CA certificates (${errorText(err)})`);
    }
  }
  return boundedAgent(ca);
}

/** Idle kept-alive upstream connections of one route: at most this many per destination... */
export const MAX_IDLE_PER_DESTINATION = 16;
/** ...at most this many over all its destinations (a `*.domain` route has as many as the program names)... */
export const MAX_IDLE_PER_ROUTE = 64;
/** ...each closed after this long unused. */
export const IDLE_UPSTREAM_MS = 30_000;

/**
 * A route's Agent. Node keeps idle sockets per destination name without a total, so a program
 * naming ever new hosts under a wildcard would make the init hold ever more: past the route's
 * total, a connection that falls idle is closed instead of kept.
 */
function boundedAgent(ca: string | undefined): Agent {
  const agent = new Agent({ keepAlive: true, maxFreeSockets: MAX_IDLE_PER_DESTINATION, timeout: IDLE_UPSTREAM_MS, scheduling: 'lifo', ...(ca ? { ca } : {}) });
  // Runs after the Agent's own 'free' handler has put the socket in its idle list.
  // (A freed socket may instead have gone straight to a queued request: only an idle one is closed.)
  agent.on('free', (socket: Socket) => {
    if (idleSockets(agent) > MAX_IDLE_PER_ROUTE && Object.values(agent.freeSockets).some((list) => list?.includes(socket))) socket.destroy();
  });
  return agent;
}

/** An agent replaced by reload(): nothing more is kept idle; exchanges in flight finish on it. */
function retire(agent: Agent): void {
  agent.maxFreeSockets = 0;
  for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
}

/** Idle kept-alive connections an agent holds (counted on every exchange's end: no array made). */
function idleSockets(agent: Agent): number {
  let n = 0;
  for (const name in agent.freeSockets) n += agent.freeSockets[name]?.length ?? 0;
  return n;
}

/** Whether a retired agent still carries an exchange (else nothing needs it any more). */
function busy(agent: Agent): boolean {
  return Object.values(agent.sockets).some((list) => (list?.length ?? 0) > 0);
}

function liveRoutes(config: HttpProxyConfig, env: ListenerEnv): LiveRoute[] {
  return config.routes.map((r, i) => ({
    hosts: r.hosts,
    port: r.port,
    pathPrefix: r.pathPrefix,
    address: r.address === undefined ? undefined : parseHostPort(r.address, `routes[${i}].address`),
    token: r.token && {
      source: env.tokens.source(r.token),
      fixedAudience: r.token.audience !== undefined,
      header: r.header,
      replace: r.authorization === 'replace',
    },
    agent: agentFor(r, i, env),
  }));
}

/** The runtime side of `type: http-proxy` (its entry in the table: ./type.ts). */
export const httpProxyRuntime: Pick<ListenerType<HttpProxyConfig>, 'start'> = {
  async start(config, env): Promise<ListenerHandle> {
    let routes = liveRoutes(config, env);
    let retired: Agent[] = [];
    const counters: ProxyCounters = { requests: 0, refused: 0, tokenErrors: 0, upstreamErrors: 0, tunnels: 0 };
    const fault = createFaultSink(env.log, `listener ${env.name}`);
    const ctx: ForwardContext = {
      routes: () => routes,
      log: env.log,
      refused: limitedWarn(env.log, 'egress refusals', LOG_LIMIT_DEFAULTS),
      failed: limitedWarn(env.log, 'egress failures', LOG_LIMIT_DEFAULTS),
      exchanged: limitedWarn(atDebug(env.log), 'egress requests', { burst: 100, windowMs: 1_000 }),
      fault,
      counters,
      connectTimeoutMs: config.connectTimeout,
      idleTimeoutMs: config.idleTimeout,
    };
    const tunnels = new Set<Socket | Duplex>();
    const server: Server = boundedHttpServer(config.headersTimeout, config.requestTimeout);
    server.maxConnections = config.maxConnections;
    server.on(
      'request',
      guard((err, req, res) => fault(err, { kind: 'request' }, req, res), (req, res) => forward(req, res, ctx)),
    );
    server.on(
      'connect',
      guard(
        (err, _req, socket: Duplex, _head: Buffer) => fault(err, { kind: 'connect' }, socket),
        (req, socket: Duplex, head: Buffer) => tunnel(req, socket, head, config.tunnels, ctx, tunnels),
      ),
    );
    server.on(
      'upgrade',
      guard(
        (err, _req, socket: Duplex) => fault(err, { kind: 'upgrade' }, socket),
        (_req, socket: Duplex) => {
          counters.refused++;
          socket.end('HTTP/1.1 501 Not Implemented\r\nX-Tee-Init-Reason: protocol upgrades (WebSocket) are not proxied\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        },
      ),
    );
    const connections = countConnections(server, fault);
    const address = await listenOn(server, config.listen, env.name, env.log, env.reusePort);
    env.log.info({ listen: formatHostPort(address), routes: config.routes.length, tunnels: config.tunnels.length }, 'egress proxy listening');
    let closing: Promise<void> | undefined;
    return {
      address,
      stats: () => ({
        http_proxy_requests_total: counters.requests,
        http_proxy_refused_total: counters.refused,
        http_proxy_token_errors_total: counters.tokenErrors,
        http_proxy_upstream_errors_total: counters.upstreamErrors,
        http_proxy_tunnels_total: counters.tunnels,
        http_proxy_connections: connections(),
        http_proxy_idle_upstream_connections: routes.reduce((n, r) => n + idleSockets(r.agent), 0),
        connection_faults_total: fault.count,
      }),
      async reload() {
        // New CA material for new upstream connections; exchanges in flight keep their agent.
        const next = liveRoutes(config, env);
        for (const r of routes) {
          retire(r.agent);
          r.token?.source.clear?.();
        }
        retired = [...retired.filter(busy), ...routes.map((r) => r.agent)];
        routes = next;
      },
      close() {
        closing ??= (async () => {
          for (const s of tunnels) s.destroy();
          await closeServer(server);
          for (const a of [...retired, ...routes.map((r) => r.agent)]) a.destroy();
          for (const r of routes) r.token?.source.clear?.();
        })();
        return closing;
      },
    };
  },
};
