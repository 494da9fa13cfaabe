// One absolute-form request through the egress proxy: matched to a route, upgraded to https,
// the route's token added, streamed both ways (bodies are never buffered), hop-by-hop headers
// dropped, Host and SNI the destination's name. Anything not routed is refused with a reason.
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { request, type Agent } from 'node:https';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TokenSource } from '../../credentials/token-types.ts';
import type { Log } from '../../log.ts';
import type { LimitedWarn } from '../log-limit.ts';
import { errorText } from '../../secrets/classify.ts';
import type { HostPort } from '../listener.ts';
import { endToEnd, hasHeader } from './http-proxy-headers.ts';
import { findRoute } from './http-proxy-routes.ts';

export const REASON_HEADER = 'X-Tee-Init-Reason';

export interface LiveRoute {
  hosts: string[];
  port?: number | undefined;
  pathPrefix?: string | undefined;
  /** Send to this address instead of resolving the host (Host and SNI stay the host's). */
  address?: HostPort | undefined;
  token?: { source: TokenSource; fixedAudience: boolean; header: string; replace: boolean } | undefined;
  agent: Agent;
}

export interface ProxyCounters {
  requests: number;
  refused: number;
  tokenErrors: number;
  upstreamErrors: number;
  tunnels: number;
}

export interface ForwardContext {
  routes: () => readonly LiveRoute[];
  log: Log;
  refused: LimitedWarn;
  failed: LimitedWarn;
  counters: ProxyCounters;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/** Header values must be one printable line. */
const oneLine = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);

export function refuse(res: ServerResponse, status: number, reason: string): void {
  if (res.headersSent) return void res.destroy();
  const body = `tee-init egress proxy: ${reason}\n`;
  res.writeHead(status, { [REASON_HEADER]: oneLine(reason), 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const TLS_TRUST = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|ERR_TLS/;

function upstreamReason(err: NodeJS.ErrnoException, authority: string): string {
  const code = err.code ?? '';
  if (TLS_TRUST.test(code)) return `certificate of ${authority} not accepted (${code}): is the route's ca right?`;
  if (code) return `upstream ${authority}: ${code}`;
  return `upstream ${authority}: ${errorText(err)}`;
}

export async function forward(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext): Promise<void> {
  ctx.counters.requests++;
  const started = performance.now();
  const no = (status: number, reason: string, fields: Record<string, unknown> = {}) => {
    ctx.counters.refused++;
    ctx.refused({ method: req.method, status, ...fields }, `egress proxy refused a request: ${reason}`);
    req.resume();
    refuse(res, status, reason);
  };
  const raw = req.url ?? '';
  let target: URL;
  try {
    target = new URL(raw);
  } catch {
    return no(400, 'not a proxy request: expected an absolute http:// URL (set HTTP_PROXY to this address)');
  }
  if ((target.protocol !== 'http:' && target.protocol !== 'https:') || !raw.toLowerCase().startsWith(`${target.protocol}//`)) {
    return no(400, `scheme ${target.protocol} is not proxied: use http://`);
  }
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port ? Number(target.port) : target.protocol === 'http:' ? 80 : 443;
  // The URL parser has resolved . and .. segments (also %2e): the path matched is the path sent.
  const route = findRoute(ctx.routes(), host, port, target.pathname);
  if (!route) return no(403, `destination ${host}:${port}${target.pathname === '/' ? '' : ' (this path)'} is not configured in routes`, { host, port });

  // http://HOST (port 80) is https://HOST:443; an explicit other port keeps its number.
  const upstreamPort = port === 80 ? 443 : port;
  const hostPart = isIP(host) === 6 ? `[${host}]` : host;
  const authority = upstreamPort === 443 ? hostPart : `${hostPart}:${upstreamPort}`;
  const drop = new Set(['host', 'expect']);
  const headers = ['Host', authority];
  if (route.token) {
    const t = route.token;
    if (!hasHeader(req.rawHeaders, t.header) || t.replace) {
      drop.add(t.header);
      try {
        const token = await t.source.get(t.fixedAudience ? undefined : `https://${authority}`);
        headers.push(t.header === 'authorization' ? 'Authorization' : 'X-Serverless-Authorization', `Bearer ${token.value}`);
      } catch (err) {
        ctx.counters.tokenErrors++;
        ctx.failed({ host, kind: 'token' }, `egress proxy: no token for ${authority}: ${errorText(err)}`);
        req.resume();
        return refuse(res, 502, `could not get a token for ${authority}: ${errorText(err)}`);
      }
      if (req.destroyed) return;
    }
  }
  headers.push(...endToEnd(req.rawHeaders, drop));

  const to = route.address ?? { host, port: upstreamPort };
  // Without a body, a request that met a kept-alive connection the server had just closed is
  // sent once more on a new one (the race every keep-alive client meets); with a body it cannot be.
  const bodyless = !hasHeader(req.rawHeaders, 'transfer-encoding') && (req.headers['content-length'] ?? '0') === '0';
  let up: ClientRequest;
  const send = (retried: boolean) => {
    up = request({
      host: to.host,
      port: to.port,
      ...(isIP(host) ? {} : { servername: host }),
      method: req.method,
      path: `${target.pathname}${target.search}`,
      headers: headers as unknown as Record<string, string>,
      agent: route.agent,
      timeout: ctx.idleTimeoutMs,
    });
    let connectTimer: NodeJS.Timeout | undefined;
    up.on('socket', (socket: TLSSocket) => {
      if (!socket.connecting) return;
      connectTimer = setTimeout(() => up.destroy(Object.assign(new Error(`no connection within ${ctx.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })), ctx.connectTimeoutMs);
      socket.once('secureConnect', () => clearTimeout(connectTimer));
    });
    up.on('timeout', () => up.destroy(Object.assign(new Error(`idle for ${ctx.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })));
    up.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (res.headersSent) return void res.destroy();
      if (bodyless && !retried && up.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE') && !res.destroyed) return send(true);
      ctx.counters.upstreamErrors++;
      const reason = upstreamReason(err, authority);
      ctx.failed({ host, kind: 'upstream', code: err.code }, `egress proxy: ${reason}`);
      req.resume();
      refuse(res, err.code === 'ETIMEDOUT' ? 504 : 502, reason);
    });
    up.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEnd(upRes.rawHeaders) as unknown as Record<string, string>);
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
      res.on('finish', () => ctx.log.debug({ method: req.method, host, port, path: target.pathname, status: upRes.statusCode, ms: Math.round(performance.now() - started), retried }, 'egress request'));
    });
    if (bodyless) {
      req.resume();
      up.end();
    } else req.pipe(up);
  };
  send(false);
  // The program went away: so does the upstream exchange.
  res.on('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  req.on('error', () => up.destroy());
}
