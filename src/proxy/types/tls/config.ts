// The `tls` listener's config (DESIGN.md `listeners:`, `type: tls`).
import { z } from 'zod';
import { duration, hostPort, name } from '../../../config/fields.ts';

export const TLS_MODES = ['strict', 'permissive', 'client'] as const;
export const XFCC_MODES = ['sanitize-set', 'forward', 'off'] as const;

const match = z.union([z.string().min(1), z.strictObject({ exact: z.string().min(1) }), z.strictObject({ prefix: z.string().min(1) })], {
  error: 'must be a string (exact), { exact: STRING } or { prefix: STRING }',
});
const peerRule = z.union([z.strictObject({ uri: match }), z.strictObject({ dns: match }), z.strictObject({ subject: z.string().min(1) })], {
  error: 'each rule is one of { uri: MATCH }, { dns: MATCH }, { subject: "CN=...,O=..." }',
});

export const tlsListenerSchema = z
  .strictObject({
    type: z.literal('tls'),
    mode: z.enum(TLS_MODES, { error: `mode must be one of ${TLS_MODES.join(', ')}` }),
    listen: hostPort('listen', true),
    connect: hostPort('connect', false),
    tls: z.strictObject({
      /** Secret names: our certificate (chain) and key, and the CA that signs the peers. */
      cert: name('tls.cert'),
      key: name('tls.key'),
      ca: name('tls.ca'),
      /** Also accept/offer TLS 1.2 (ECDHE suites only). Default: 1.3 only. */
      tls12: z.boolean().default(false),
      /** Client mode: SNI, and the name the server certificate must carry unless `servers:` is given. */
      serverName: z.string().min(1).max(253).optional(),
    }),
    /** Server modes: only clients whose certificate matches one rule get through. */
    clients: z.array(peerRule).min(1).optional(),
    /** Client mode: the server's certificate must match one rule (instead of the name check). */
    servers: z.array(peerRule).min(1).optional(),
    /** Server modes: speak HTTP/1.1 to the backend and tell it who the client is. */
    http: z
      .strictObject({
        xfcc: z.enum(XFCC_MODES, { error: `xfcc must be one of ${XFCC_MODES.join(', ')}` }).default('sanitize-set'),
        /** RFC 9440 Client-Cert: the client's certificate, base64 DER. */
        clientCert: z.boolean().default(false),
        /** A request's headers must be complete this long after the connection's start or its previous response. */
        headersTimeout: duration(1).default(30_000),
      })
      .optional(),
    handshakeTimeout: duration(1).default(10_000),
    connectTimeout: duration(1).default(5_000),
    idleTimeout: duration().default(12 * 3_600_000),
    maxConnections: z.number().int().min(1).max(100_000).default(1024),
    readyTimeout: duration(1).default(30_000),
    /** Worker threads serving the port (SO_REUSEPORT); 0 = in the init's own thread. */
    workers: z.number().int().min(0).max(64).optional(),
  })
  .superRefine((c, ctx) => {
    const server = c.mode !== 'client';
    if (!server && c.clients) ctx.addIssue({ code: 'custom', path: ['clients'], message: 'applies to strict and permissive mode; client mode checks the server with servers:' });
    if (!server && c.http) ctx.addIssue({ code: 'custom', path: ['http'], message: 'applies to strict and permissive mode (the proxy tells the backend who the client is)' });
    if (server && c.servers) ctx.addIssue({ code: 'custom', path: ['servers'], message: 'applies to client mode only; server modes check clients with clients:' });
    if (server && c.tls.serverName) ctx.addIssue({ code: 'custom', path: ['tls', 'serverName'], message: 'applies to client mode only' });
  });

export type TlsListenerConfig = z.infer<typeof tlsListenerSchema>;
