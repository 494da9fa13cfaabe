// Which destinations the egress proxy serves: host patterns (exact names, or `*.suffix` for any
// name under it; their config rules: src/config/listeners/http-proxy.ts), an optional port and
// path prefix. Nothing else is forwarded: the proxy is never an open relay.
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether a request's host is a DNS name (at most 253 characters, labels of 1-63) or an IP
 * address: it becomes the upstream's SNI and an ID token's audience (a cache key and a mint),
 * so the URL parser's looser idea of a host is not enough. `_` is let through (some internal
 * names have it).
 */
export function validRequestHost(host: string): boolean {
  if (ipVersion(host) !== 0) return true;
  return host.length - (host.endsWith('.') ? 1 : 0) <= 253 && DNS_NAME.test(host);
}

/** Labels of 1-63 characters, one trailing dot allowed. */
const DNS_NAME = /^(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?$/;

/**
 * net.isIP() without its cost for a name: only a string with a colon can be an IPv6 address and
 * only digits and dots an IPv4 one, so a DNS name never meets Node's long IPv6 pattern.
 */
export function ipVersion(host: string): 0 | 4 | 6 {
  if (host.includes(':')) return isIPv6(host) ? 6 : 0;
  return /^[0-9.]+$/.test(host) && isIPv4(host) ? 4 : 0;
}

export function hostMatches(pattern: string, host: string): boolean {
  return patternCovers(pattern, comparable(host));
}

/** A host as patterns are compared with: lowercase, without the root's trailing dot. */
function comparable(host: string): string {
  const h = host.toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** `pattern` (lowercase, from the config) against a comparable() host. */
function patternCovers(pattern: string, h: string): boolean {
  if (pattern.startsWith('*.')) return h.length > pattern.length - 1 && h.endsWith(pattern.slice(1));
  return h === pattern || ((pattern.startsWith('[') || pattern.endsWith(']')) && h === pattern.replace(/^\[|\]$/g, ''));
}

export interface RouteMatch {
  hosts: string[];
  port?: number | undefined;
  pathPrefix?: string | undefined;
}

/**
 * The first route (in config order) that covers host:port/path. A path prefix must hold for
 * the path as sent and as a destination that decodes escaped separators would read it
 * (`/api/..%2fadmin` is `/admin` to it: Envoy's CVE-2021-29492), so neither reading escapes it.
 */
export function findRoute<R extends RouteMatch>(routes: readonly R[], host: string, port: number, path: string): R | undefined {
  let decoded: string | undefined;
  const under = (prefix: string) => pathUnder(path, prefix) && pathUnder((decoded ??= decodedPath(path)), prefix);
  const h = comparable(host);
  return routes.find((r) => (r.port === undefined || r.port === port) && (r.pathPrefix === undefined || under(r.pathPrefix)) && r.hosts.some((p) => patternCovers(p, h)));
}

/**
 * `path` (already parsed by the URL parser, so `.`, `..` and `%2e%2e` are resolved) as a lenient
 * destination reads it: %2F, %5C and a backslash are `/`, %2E is `.`, a dot segment with
 * `;params` (`..;`, as Tomcat) is a dot segment, then `.` and `..` are resolved. Only for
 * matching: the request goes on as it was sent.
 */
export function decodedPath(path: string): string {
  const segments = path.replace(/%2f|%5c|\\/gi, '/').replace(/%2e/gi, '.').split('/').slice(1);
  const out: string[] = [];
  segments.forEach((segment, i) => {
    const bare = segment.replace(/;.*$/, '');
    if (bare !== '.' && bare !== '..') return void out.push(segment);
    if (bare === '..') out.pop();
    // A dot segment at the end leaves a directory: `/a/b/..` is `/a/`.
    if (i === segments.length - 1) out.push('');
  });
  return `/${out.join('/')}`;
}

/** `/api` covers /api, /api/x and /api?q, not /apix; `/api/` covers /api/x. */
function pathUnder(path: string, prefix: string): boolean {
  if (prefix.endsWith('/')) return path.startsWith(prefix);
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** Whether a CONNECT to host:port is on the allow-list. */
export function tunnelAllowed(allow: readonly string[], host: string, port: number): boolean {
  return allow.some((entry) => {
    const i = entry.lastIndexOf(':');
    return Number(entry.slice(i + 1)) === port && hostMatches(entry.slice(0, i).toLowerCase(), host);
  });
}
