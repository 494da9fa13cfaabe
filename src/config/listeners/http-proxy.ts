// `type: http-proxy`: the egress proxy's config (docs/listeners.md, listeners): its routes, CONNECT
// tunnels and whether the program's environment points at it. The proxy is src/proxy/types/http-proxy/.
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatHostPort, type HostPort } from '../../lib/address.ts';
import { duration, hostPort } from '../fields.ts';
import { headersTimeoutField, loopbackListen } from './loopback.ts';
import { tokenConfigSchema } from './token.ts';
import type { ListenerConfigType } from './type.ts';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Why a host pattern is not usable, or undefined. */
function patternProblem(p: string): string | undefined {
  if (p === '*' || p === '*.') return 'a bare "*" would make the proxy an open relay: name the hosts (e.g. "*.run.app")';
  if (isIP(p.replace(/^\[|\]$/g, ''))) return undefined;
  const name = p.startsWith('*.') ? p.slice(2) : p;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return 'must be a host name, an IP address, or "*." followed by a domain (e.g. "*.run.app")';
  if (p.startsWith('*.') && labels.length < 2) return `"${p}" covers a whole top-level domain: name a domain under it`;
  return undefined;
}

export const hostPattern = z
  .string()
  .transform((s) => s.toLowerCase())
  .superRefine((p, ctx) => {
    const why = patternProblem(p);
    if (why) ctx.addIssue({ code: 'custom', message: `host pattern ${JSON.stringify(p)}: ${why}` });
  });

/** `host:port` for CONNECT tunnels; the host may be a pattern. */
export const tunnelPattern = z.string().superRefine((v, ctx) => {
  const m = /^(.+):(\d{1,5})$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || !(port >= 1 && port <= 65535)) return void ctx.addIssue({ code: 'custom', message: `tunnel ${JSON.stringify(v)}: must be HOST:PORT (HOST may be "*.domain")` });
  const why = patternProblem(m[1]!.toLowerCase());
  if (why) ctx.addIssue({ code: 'custom', message: `tunnel ${JSON.stringify(v)}: ${why}` });
});

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

// What the program's environment gets when an http-proxy listener says `env:` (the pipeline
// adds it to the child's env once the listener is bound): the proxy variables in both cases
// (curl reads only lowercase http_proxy, Go and Python either), loopback exempted.
export const LOOPBACK_NO_PROXY = ['localhost', '127.0.0.1', '::1'];

export function httpProxyEnv(config: Pick<HttpProxyConfig, 'env'>, address: HostPort): Record<string, string> {
  if (config.env === false) return {};
  const url = `http://${formatHostPort(address)}`;
  const extra = config.env === true ? [] : config.env.noProxy;
  const noProxy = [...new Set([...LOOPBACK_NO_PROXY, ...extra])].join(',');
  const out: Record<string, string> = { HTTP_PROXY: url, http_proxy: url, NO_PROXY: noProxy, no_proxy: noProxy };
  if (config.env !== true && config.env.httpsProxy) Object.assign(out, { HTTPS_PROXY: url, https_proxy: url });
  return out;
}

export const httpProxyConfigType: ListenerConfigType<HttpProxyConfig> = {
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
};
