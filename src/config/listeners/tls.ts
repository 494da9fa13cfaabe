// The `tls` listener's config (docs/listeners.md `listeners:`, `type: tls`): mutual TLS in front of
// a program (strict, permissive) or out to a remote peer (client). Its runtime is src/proxy/types/tls/.
import { z } from 'zod';
import { parseHostPort } from '../../lib/address.ts';
import { MAX_AUDIENCE_BYTES } from '../../lib/launcher-limits.ts';
import { claimValue, duration, hostPort, name, url } from '../fields.ts';
import type { ListenerConfigType } from './type.ts';

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
      /**
       * Server modes without http: the ALPN protocols the program speaks, in order of preference
       * (h2 for gRPC): a client offering one gets it selected; others see no ALPN, as before.
       */
      alpn: z.array(z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, { error: 'printable ASCII, no spaces' })).min(1).max(8).optional(),
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
    /**
     * Server modes: attested TLS. A client offering ALPN tee-attest/1 gets a Confidential Space
     * token bound to its connection right after the handshake (src/proxy/types/tls/attest.ts).
     */
    attest: z
      .strictObject({
        audience: z.string().min(1).refine((a) => Buffer.byteLength(a) <= MAX_AUDIENCE_BYTES, { error: `at most ${MAX_AUDIENCE_BYTES} bytes (the launcher's limit)` }),
        type: z.enum(['OIDC', 'PKI'], { error: 'type must be OIDC or PKI' }).default('OIDC'),
      })
      .optional(),
    /** Client mode: forward nothing until the server proves, bound to this connection, what it runs. */
    verify: z
      .strictObject({
        attestation: z.strictObject({
          audience: z.string().min(1).refine((a) => Buffer.byteLength(a) <= MAX_AUDIENCE_BYTES, { error: `at most ${MAX_AUDIENCE_BYTES} bytes` }),
          /** Claims the server's token must carry, as attestation.require (dotted paths; a list = any of). */
          require: z.record(z.string().min(1), claimValue).default({}),
          /** Accept a debug image (dbgstat other than disabled-since-boot): its operator can read memory. */
          allowDebug: z.boolean().default(false),
          /** The JWKS URL (default: endpoints.jwks, else the issuer's discovery document). */
          jwks: url('verify.attestation.jwks').optional(),
          /** The PEM root PKI tokens must chain to (default: the issuer's /.well-known/attestation-pki-root). */
          pkiRoot: url('verify.attestation.pkiRoot').optional(),
        }),
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
    if (!server && c.attest) ctx.addIssue({ code: 'custom', path: ['attest'], message: 'applies to strict and permissive mode (the server proves what it runs); client mode checks a server with verify.attestation' });
    if (server && c.verify) ctx.addIssue({ code: 'custom', path: ['verify'], message: 'applies to client mode only; server modes attest themselves with attest:' });
    if (c.tls.alpn && (!server || c.http)) ctx.addIssue({ code: 'custom', path: ['tls', 'alpn'], message: 'applies to strict and permissive mode without http: (the program speaks the protocol the client asked for)' });
    if (c.tls.alpn?.includes('tee-attest/1')) ctx.addIssue({ code: 'custom', path: ['tls', 'alpn'], message: 'tee-attest/1 is attest:\'s; list the protocols the program speaks' });
    if (server && c.tls.serverName) ctx.addIssue({ code: 'custom', path: ['tls', 'serverName'], message: 'applies to client mode only' });
  });

export type TlsListenerConfig = z.infer<typeof tlsListenerSchema>;

export const tlsConfigType: ListenerConfigType<TlsListenerConfig> = {
  type: 'tls',
  schema: tlsListenerSchema,
  secrets: (c) => [...new Set([c.tls.cert, c.tls.key, c.tls.ca])],
  credentials: () => [],
  actsForWorkload: (c) => (c.mode === 'client' ? 'a tls listener in client mode presents the workload\'s client certificate' : undefined),
  upstream: (c) => (c.mode === 'client' ? undefined : parseHostPort(c.connect, 'connect')),
};
