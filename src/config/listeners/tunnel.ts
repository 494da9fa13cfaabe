// `listeners: NAME: { type: tunnel, ... }` (docs/design.md): TCP carried over HTTP/2 streams, one
// stream per connection, for front doors that speak only HTTP (Cloud Run). Both modes' config;
// the runtime is src/proxy/types/tunnel/.
import { z } from 'zod';
import { parseHostPort } from '../../lib/address.ts';
import { duration, hostPort, url } from '../fields.ts';
import { tokenConfigSchema } from './token.ts';
import type { ListenerConfigType } from './type.ts';

const secretName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, { error: 'must be the name of a configured secret' });

export const TUNNEL_METHODS = ['POST', 'CONNECT'] as const;
export type TunnelMethod = (typeof TUNNEL_METHODS)[number];

/** Mutual TLS inside the tunnel, end to end between the two programs' sides. */
const innerTls = z.strictObject({
  /** This side's certificate chain and key, and the CA the other side's certificate must chain to. */
  cert: secretName,
  key: secretName,
  ca: secretName,
  /**
   * Client mode: the name the server's inner certificate must carry (and SNI). Required: with one
   * CA for clients and servers (most small PKIs), the chain alone would let any client pose as
   * the server.
   */
  serverName: z.string().min(1).max(253).optional(),
  /** Client mode: accept any name (the chain alone is checked); only for a CA that issues server certificates alone. */
  anyServerName: z.literal(true).optional(),
});

const limits = {
  /** Open TCP connections (client) or HTTP/2 connections (server) beyond which new ones are refused. */
  maxConnections: z.number().int().min(1).max(100_000).default(1000),
  /** No traffic either way on a tunnel for this long closes it; 0 = never. Cloud Run ends a request at 60 min anyway. */
  idleTimeout: duration().default(3_600_000),
  /**
   * Inner TLS handshake. Server: also the outer TLS handshake, and the time a new HTTP/2
   * connection has to open an authenticated tunnel (headers, bearer, inner TLS) before it is closed.
   */
  handshakeTimeout: duration(1).default(10_000),
  /** HTTP/2 PING this often on each connection; one unanswered by the next closes it. 0 = off. */
  keepalive: duration().default(60_000),
  /** Per-stream HTTP/2 flow-control window in bytes: what one tunnel may have in flight. */
  streamWindow: z.number().int().min(65_535).max(2 ** 31 - 1).default(1 << 20),
  /** Threads serving the port (SO_REUSEPORT); default one per core, at most 4; 0 = the init's thread. */
  workers: z.number().int().min(0).max(64).optional(),
};

export const tunnelServerSchema = z
  .strictObject({
    type: z.literal('tunnel'),
    mode: z.literal('server'),
    listen: hostPort('listen', true),
    /** The program's plaintext TCP port every tunnel is piped to (never a destination the client picks). */
    connect: hostPort('connect', false),
    /** Cleartext HTTP/2 (prior knowledge), as Cloud Run delivers it with end-to-end HTTP/2. */
    h2c: z.boolean().default(false),
    /** Without h2c: the HTTP/2 listener's TLS certificate and key (secret names). */
    tls: z.strictObject({ cert: secretName, key: secretName }).optional(),
    /** The path POST tunnels are accepted on (CONNECT has none). */
    path: z.string().regex(/^\/[\x21-\x7e]*$/, { error: 'must be an absolute path like /' }).default('/'),
    methods: z.array(z.enum(TUNNEL_METHODS)).min(1).default(['POST', 'CONNECT']),
    /** Require `Authorization: Bearer <JWT>` (for a deployment with no front door checking it). */
    bearer: z
      .strictObject({
        audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
        issuer: z.string().min(1).default('https://accounts.google.com'),
        jwks: url('bearer.jwks').default('https://www.googleapis.com/oauth2/v3/certs'),
        /** Only these callers (the token's verified `email` claim), if given. */
        emails: z.array(z.string().min(3)).min(1).optional(),
        clockTolerance: duration().default(30_000),
      })
      .optional(),
    inner: z.strictObject({ tls: innerTls.omit({ serverName: true, anyServerName: true }) }).optional(),
    /** Concurrent streams (tunnels) per HTTP/2 connection. */
    maxStreams: z.number().int().min(1).max(10_000).default(100),
    /**
     * Authenticated tunnels open at once over all connections (connecting to the program or
     * piped): bounds the program connections the listener holds. Beyond it: REFUSED_STREAM.
     */
    maxTunnels: z.number().int().min(1).max(100_000).default(1000),
    /** TCP connect to `connect`. */
    connectTimeout: duration(1).default(5_000),
    ...limits,
  })
  .superRefine((c, ctx) => {
    if (!c.h2c && !c.tls) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'set tls: {cert, key} for an HTTP/2-over-TLS listener, or h2c: true for cleartext HTTP/2 behind a front door' });
    if (c.h2c && c.tls) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'h2c: true is cleartext: remove tls, or set h2c: false' });
  });

export const tunnelClientSchema = z
  .strictObject({
    type: z.literal('tunnel'),
    mode: z.literal('client'),
    listen: hostPort('listen', true),
    /** Where the HTTP/2 stream goes: https://HOST[:PORT]/PATH (http:// to loopback only: h2c). */
    url: url('url'),
    /** POST (Cloud Run: it has no CONNECT) or CONNECT (RFC 9113 §8.5, general proxies). */
    method: z.enum(TUNNEL_METHODS).default('POST'),
    /** CONNECT's :authority (default: the url's host:port). */
    authority: hostPort('authority', false).optional(),
    /** Outer TLS: trust this CA (secret name) instead of the system roots; for private front doors. */
    tls: z.strictObject({ ca: secretName }).optional(),
    /** A bearer token on every stream (Cloud Run private services: an id-token for the url). */
    token: tokenConfigSchema.optional(),
    inner: z.strictObject({ tls: innerTls }).optional(),
    /** The HTTP/2 connection, and then the response to each stream, must come within this. */
    connectTimeout: duration(1).default(10_000),
    ...limits,
  })
  .superRefine((c, ctx) => {
    if (c.authority !== undefined && c.method !== 'CONNECT') ctx.addIssue({ code: 'custom', path: ['authority'], message: 'authority is for method: CONNECT only' });
    const tls = c.inner?.tls;
    if (tls && tls.serverName === undefined && !tls.anyServerName) {
      ctx.addIssue({
        code: 'custom', path: ['inner', 'tls', 'serverName'],
        message: 'required: the name (DNS SAN) the tunnel server\'s inner certificate carries; without it any certificate from the CA, a client\'s too, could pose as the server (anyServerName: true checks the chain alone, for a CA that issues server certificates only)',
      });
    }
    if (tls?.serverName !== undefined && tls.anyServerName) ctx.addIssue({ code: 'custom', path: ['inner', 'tls', 'anyServerName'], message: 'set serverName or anyServerName: true, not both' });
  });

export const tunnelSchema = z.discriminatedUnion('mode', [tunnelServerSchema, tunnelClientSchema], {
  error: 'mode must be server or client',
});

export type TunnelServerConfig = z.output<typeof tunnelServerSchema>;
export type TunnelClientConfig = z.output<typeof tunnelClientSchema>;
export type TunnelConfig = z.output<typeof tunnelSchema>;
export type TunnelConfigInput = z.input<typeof tunnelSchema>;

export const tunnelConfigType: ListenerConfigType<TunnelConfig> = {
  type: 'tunnel',
  schema: tunnelSchema,
  secrets(c) {
    const inner = c.inner ? [c.inner.tls.cert, c.inner.tls.key, c.inner.tls.ca] : [];
    const outer = c.mode === 'server' ? (c.tls ? [c.tls.cert, c.tls.key] : []) : (c.tls ? [c.tls.ca] : []);
    return [...new Set([...outer, ...inner])];
  },
  credentials(c) {
    return c.mode === 'client' && c.token?.credentials !== undefined ? [c.token.credentials] : [];
  },
  actsForWorkload(c) {
    if (c.mode !== 'client') return undefined;
    if (c.token) return 'a tunnel client with a token sends the workload\'s bearer token';
    if (c.inner) return 'a tunnel client with inner TLS presents the workload\'s client certificate';
    return undefined;
  },
  upstream(c) {
    // Client mode fronts a remote service: probing it would be a stream in its logs.
    return c.mode === 'server' ? parseHostPort(c.connect, 'connect') : undefined;
  },
};
