// `type: http-proxy`: the egress proxy for the program's outbound calls (docs/listeners.md, listeners).
// The program sets HTTP_PROXY to it and calls http://svc-abc.a.run.app/...; configured routes
// are sent on over https with the route's token (a Google-signed ID token for a private Cloud
// Run service, an access token, an attestation token). Loopback only; never an open relay.
import type { Server } from 'node:http';
import { Agent } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext } from 'node:tls';
import { z } from 'zod';
import { duration, hostPort } from '../../../config/fields.ts';
import { tokenConfigSchema } from '../../../credentials/token-types.ts';
import { configError } from '../../../lib/errors.ts';
import { errorText } from '../../../lib/classify.ts';
import { formatHostPort, parseHostPort } from '../../../lib/address.ts';
import { createFaultSink, guard } from '../../boundary.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn } from '../../../lib/log-limit.ts';
import type { ListenerEnv, ListenerHandle, ListenerType } from '../../listener.ts';
import { httpProxyEnv } from './env.ts';
import { tunnel } from './connect.ts';
import { forward, type ForwardContext, type LiveRoute, type ProxyCounters } from './forward.ts';
import { hostPattern, tunnelPattern } from './routes.ts';
import { atDebug, boundedHttpServer, closeServer, countConnections, headersTimeoutField, listenOn, loopbackListen } from '../../loopback-http.ts';

const secretName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, { error: 'must be the name of a configured secret' });

const route = z.strictObject({
  /** Exact names, IP addresses, or `*.domain` (any name under it). */
  hosts: z.array(hostPattern).min(1),
  /** Only requests for this port (as the program wrote it; http:// without one is 80). */
  port: z.number().int().min(1).max(65535).optional(),
  /** Only paths under this prefix (`/api` covers /api and /api/...). */
  pathPrefix: z.string().regex(/^\/[^?#\s]*$/, { error: 'must be a path starting with /' }).optional(),
  /** The bearer token to add; none: forwarded over https without one. */
  token: tokenConfigSchema.optional(),
  /** keep: a request that has its own Authorization keeps it; replace: the route's token wins. */
  authorization: z.enum(['keep', 'replace']).default('keep'),
  /** Where the token goes: Authorization, or Cloud Run's X-Serverless-Authorization (leaves the program's Authorization to the service). */
  header: z.enum(['authorization', 'x-serverless-authorization']).default('authorization'),
  /** A secret holding the PEM CA certificate(s) to verify the destination with, instead of the public roots Node ships (the Mozilla list). */
  ca: secretName.optional(),
  /** Connect here instead of resolving the host (a Private Service Connect address); Host and SNI stay the host's. */
  address: hostPort('address', false).optional(),
});

export const httpProxySchema = z.strictObject({
  type: z.literal('http-proxy'),
  listen: loopbackListen,
  routes: z.array(route).min(1, { error: 'needs at least one route: a proxy that serves nothing is a mistake' }),
  /** HOST:PORT (HOST may be `*.domain`) that CONNECT may tunnel to, with no token. Default: none. */
  tunnels: z.array(tunnelPattern).default([]),
  /** Set HTTP_PROXY/http_proxy and NO_PROXY (loopback, plus noProxy) in the program's environment; httpsProxy also HTTPS_PROXY. */
  env: z.union([z.boolean(), z.strictObject({ noProxy: z.array(z.string().min(1)).default([]), httpsProxy: z.boolean().default(false) })]).default(false),
  maxConnections: z.number().int().min(1).max(100_000).default(1024),
  connectTimeout: duration(1).default(10_000),
  /** An upstream exchange with no bytes either way for this long is cut (504 if nothing was answered yet). */
  idleTimeout: duration(1).default(300_000),
  /** A program connection that has not sent a whole request head within this gets 408 and is closed. */
  headersTimeout: headersTimeoutField,
  /** The whole request, body included, must arrive within this; 0: no limit (uploads stream; idleTimeout cuts a stalled exchange). */
  requestTimeout: duration(0).default(0),
  /** 1 (default): its own thread; 0: the init's thread. One is plenty (see defaultWorkers). */
  workers: z.number().int().min(0).max(1).optional(),
});

export type HttpProxyConfig = z.infer<typeof httpProxySchema>;
export type HttpProxyRoute = HttpProxyConfig['routes'][number];

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

/** Idle kept-alive connections an agent holds. */
function idleSockets(agent: Agent): number {
  let n = 0;
  for (const list of Object.values(agent.freeSockets)) n += list?.length ?? 0;
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

export const httpProxyType: ListenerType<HttpProxyConfig> = {
  type: 'http-proxy',
  schema: httpProxySchema,
  secrets: (c) => c.routes.flatMap((r) => (r.ca ? [r.ca] : [])),
  credentials: (c) => c.routes.flatMap((r) => (r.token?.credentials ? [r.token.credentials] : [])),
  upstream: () => undefined,
  // One program's outbound calls on loopback: bound by the upstreams and token mints, not by a
  // core; one thread keeps one keep-alive pool per route (N would open N times the upstream
  // connections) and keeps maxConnections one server's count.
  defaultWorkers: 1,
  childEnv: (config, address) => httpProxyEnv(config, address),
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
        for (const r of routes) retire(r.agent);
        retired = [...retired.filter(busy), ...routes.map((r) => r.agent)];
        routes = next;
      },
      close() {
        closing ??= (async () => {
          for (const s of tunnels) s.destroy();
          await closeServer(server);
          for (const a of [...retired, ...routes.map((r) => r.agent)]) a.destroy();
        })();
        return closing;
      },
    };
  },
};
