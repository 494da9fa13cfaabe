// One absolute-form request through the egress proxy: matched to a route, upgraded to https,
// the route's token added, streamed both ways (bodies are never buffered), hop-by-hop headers
// dropped, Host and SNI the destination's name. Anything not routed is refused with a reason.
import { validateHeaderName, validateHeaderValue, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request, type Agent } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { TokenSource } from '../../../credentials/token-types.ts';
import type { Log } from '../../../lib/log.ts';
import { guard, type FaultSink } from '../../boundary.ts';
import type { LimitedWarn } from '../../../lib/log-limit.ts';
import { errorText } from '../../../lib/classify.ts';
import type { HostPort } from '../../listener.ts';
import { bodyless, endToEnd, hasHeader } from './headers.ts';
import { findRoute, ipVersion, validRequestHost } from './routes.ts';

export const REASON_HEADER = 'X-Tee-Init-Reason';

export interface LiveRoute {
  hosts: string[];
  port?: number | undefined;
  pathPrefix?: string | undefined;
  /** Send to this address instead of resolving the host (Host and SNI stay the host's). */
  address?: HostPort | undefined;
  /** `clear`: forgets the tokens a worker thread holds (reload, close). */
  token?: { source: TokenSource & { clear?(): void }; fixedAudience: boolean; header: string; replace: boolean } | undefined;
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
  /** One debug line per exchange, rate-limited (the program decides how many there are). */
  exchanged: LimitedWarn;
  /** The listener's failure boundary: a throw in a handler ends that one connection. */
  fault: FaultSink;
  counters: ProxyCounters;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/** Header values must be one printable line. */
const oneLine = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);

export function refuse(res: ServerResponse, status: number, reason: string): void {
  if (res.headersSent) return void res.destroy();
  const body = `tee-init egress proxy: ${reason}\n`;
  // A body still arriving is not read to its end (it could have none): the connection closes.
  const unread = res.req !== undefined && !res.req.complete;
  res.writeHead(status, { [REASON_HEADER]: oneLine(reason), 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...(unread ? { connection: 'close' } : {}) });
  res.end(body);
}

const TLS_TRUST = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|ERR_TLS/;

/** Interim (1xx) responses accepted before the final one: past it, a destination is looping. */
export const MAX_INTERIM_RESPONSES = 16;
/** A destination's response head (status line and headers) above this is refused (502). */
export const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

/** A destination's response the proxy does not pass on (its message says why, naming no value). */
class BadResponse extends Error {
  readonly code = 'EBADRESPONSE';
}

/** RFC 9112 reason-phrase: HTAB, SP, VCHAR, obs-text (exactly what writeHead takes). */
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Why a destination's response head cannot be written to the program as it is, or undefined.
 * Node's parser already refuses most malformed heads; what it lets through (a status below 100,
 * a control character in the reason) would make writeHead throw in the init.
 */
export function responseProblem(status: number | undefined, reason: string | undefined, raw: readonly string[]): string | undefined {
  if (status === undefined || !(status >= 200 && status <= 599)) return `status ${String(status)} is not a final HTTP status (200-599)`;
  if (reason !== undefined && !REASON_PHRASE.test(reason)) return 'its reason phrase holds control characters';
  for (let i = 0; i < raw.length; i += 2) {
    try {
      validateHeaderName(raw[i]!);
      validateHeaderValue(raw[i]!, raw[i + 1] ?? '');
    } catch {
      return `its header #${i / 2 + 1} is not a valid HTTP field`;
    }
  }
  return undefined;
}

function upstreamReason(err: NodeJS.ErrnoException, authority: string): string {
  const code = err.code ?? '';
  if (err instanceof BadResponse) return `${authority} sent a response that is not passed on: ${err.message}`;
  if (code === 'HPE_HEADER_OVERFLOW') return `${authority} sent a response head over ${MAX_RESPONSE_HEAD_BYTES} bytes`;
  if (code.startsWith('HPE_')) return `${authority} sent a malformed HTTP response (${code})`;
  if (TLS_TRUST.test(code)) return `certificate of ${authority} not accepted (${code}): is the route's ca right?`;
  if (code) return `upstream ${authority}: ${code}`;
  return `upstream ${authority}: ${errorText(err)}`;
}


/** A request the proxy does not forward: counted, logged (rate-limited), answered with the reason. */
function refuseRequest(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext, status: number, reason: string, fields: Record<string, unknown> = {}): void {
  ctx.counters.refused++;
  ctx.refused({ method: req.method, status, ...fields }, `egress proxy refused a request: ${reason}`);
  req.resume();
  refuse(res, status, reason);
}

// Request headers never passed on, by where the route's token goes (made once, not per request).
const DROP = new Set(['host', 'expect']);
const DROP_WITH_TOKEN = { authorization: new Set([...DROP, 'authorization']), 'x-serverless-authorization': new Set([...DROP, 'x-serverless-authorization']) };
const TOKEN_HEADER = { authorization: 'Authorization', 'x-serverless-authorization': 'X-Serverless-Authorization' };

/** One exchange's destination, as forward() resolved it. */
interface Destination {
  route: LiveRoute;
  target: URL;
  host: string;
  port: number;
  ip: 0 | 4 | 6;
  authority: string;
}

/**
 * Forwards one request. Synchronous on a route without a token (or one the program's own
 * Authorization keeps): the common call costs no promise; with a token it waits for it.
 */
export function forward(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext): Promise<void> | undefined {
  ctx.counters.requests++;
  const raw = req.url ?? '';
  let target: URL;
  try {
    target = new URL(raw);
  } catch {
    return void refuseRequest(req, res, ctx, 400, 'not a proxy request: expected an absolute http:// URL (set HTTP_PROXY to this address)');
  }
  const scheme = target.protocol;
  if ((scheme !== 'http:' && scheme !== 'https:') || raw.slice(0, scheme.length + 2).toLowerCase() !== `${scheme}//`) {
    return void refuseRequest(req, res, ctx, 400, `scheme ${scheme} is not proxied: use http://`);
  }
  // The URL parser lowercases an http(s) host; an IPv6 one keeps its brackets.
  const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
  const port = target.port ? Number(target.port) : scheme === 'http:' ? 80 : 443;
  if (!validRequestHost(host)) return void refuseRequest(req, res, ctx, 400, 'the host is not a DNS name (labels of 1-63 characters, 253 in all) or an IP address');
  // The URL parser has resolved . and .. segments (also %2e); findRoute also checks the path as
  // a destination that decodes %2F, %5C and %2E would read it.
  const route = findRoute(ctx.routes(), host, port, target.pathname);
  if (!route) return void refuseRequest(req, res, ctx, 403, `destination ${host}:${port}${target.pathname === '/' ? '' : ' (this path)'} is not configured in routes`, { host, port });

  // http://HOST (port 80) is https://HOST:443; an explicit other port keeps its number.
  const upstreamPort = port === 80 ? 443 : port;
  const ip = ipVersion(host);
  const hostPart = ip === 6 ? `[${host}]` : host;
  const authority = upstreamPort === 443 ? hostPart : `${hostPart}:${upstreamPort}`;
  const to: Destination = { route, target, host, port, ip, authority };
  const t = route.token;
  if (t && (t.replace || !hasHeader(req.rawHeaders, t.header))) return withToken(req, res, ctx, to, t);
  exchange(req, res, ctx, to, ['Host', authority, ...endToEnd(req.rawHeaders, DROP)]);
  return undefined;
}

async function withToken(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext, to: Destination, t: NonNullable<LiveRoute['token']>): Promise<void> {
  let token: string;
  try {
    token = (await t.source.get(t.fixedAudience ? undefined : `https://${to.authority}`)).value;
  } catch (err) {
    ctx.counters.tokenErrors++;
    ctx.failed({ host: to.host, kind: 'token' }, `egress proxy: no token for ${to.authority}: ${errorText(err)}`);
    req.resume();
    return refuse(res, 502, `could not get a token for ${to.authority}: ${errorText(err)}`);
  }
  if (req.destroyed) return;
  exchange(req, res, ctx, to, ['Host', to.authority, TOKEN_HEADER[t.header as keyof typeof TOKEN_HEADER], `Bearer ${token}`, ...endToEnd(req.rawHeaders, DROP_WITH_TOKEN[t.header as keyof typeof DROP_WITH_TOKEN])]);
}

/** Sends the request on to its destination and the answer back. */
function exchange(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext, to: Destination, headers: string[]): void {
  const { route, target, host, port, authority } = to;
  const address = route.address ?? { host, port: port === 80 ? 443 : port };
  // Without a body, a request that met a kept-alive connection the server had just closed is
  // sent once more on a new one (the race every keep-alive client meets); with a body it cannot be.
  const noBody = bodyless(req.rawHeaders);
  // The per-exchange debug line and its clock only when debug lines are written.
  const started = ctx.log.isLevelEnabled('debug') ? performance.now() : undefined;
  let up: ClientRequest | undefined;
  // A throw in any handler of this exchange ends this exchange and the program's connection.
  const onFault = (err: unknown, ..._args: unknown[]) => ctx.fault(err, { host, port }, up, res);
  const safe = <A extends unknown[]>(fn: (...args: A) => unknown) => guard<A>(onFault, fn);
  const send = (retried: boolean) => {
    const u = request({
      host: address.host,
      port: address.port,
      ...(to.ip ? {} : { servername: host }),
      method: req.method,
      path: `${target.pathname}${target.search}`,
      headers: headers as unknown as Record<string, string>,
      agent: route.agent,
      timeout: ctx.idleTimeoutMs,
      maxHeaderSize: MAX_RESPONSE_HEAD_BYTES,
    });
    up = u;
    // Answered, failed or sent again: each exchange has one outcome, whatever events follow.
    let settled = false;
    let piping = false;
    let interim = 0;
    let connectTimer: NodeJS.Timeout | undefined;
    // After the head was passed on, a body cut short ends the program's connection (it cannot
    // be told otherwise); the close that follows every exchange changes nothing.
    const afterSettled = () => void (piping && !res.writableEnded && res.destroy());
    const failed = (err: NodeJS.ErrnoException) => {
      if (settled) return afterSettled();
      settled = true;
      clearTimeout(connectTimer);
      if (res.headersSent || res.destroyed) return void res.destroy();
      if (noBody && !retried && u.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return send(true);
      ctx.counters.upstreamErrors++;
      const reason = upstreamReason(err, authority);
      ctx.failed({ host, kind: 'upstream', code: err.code }, `egress proxy: ${reason}`);
      req.resume();
      refuse(res, err.code === 'ETIMEDOUT' ? 504 : 502, reason);
    };
    u.on('socket', safe((socket: TLSSocket) => {
      if (!socket.connecting) return;
      connectTimer = setTimeout(safe(() => u.destroy(Object.assign(new Error(`no connection within ${ctx.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }))), ctx.connectTimeoutMs);
      socket.once('secureConnect', safe(() => clearTimeout(connectTimer)));
    }));
    u.on('timeout', safe(() => u.destroy(Object.assign(new Error(`idle for ${ctx.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' }))));
    u.on('error', safe(failed));
    // 1xx answers are not passed on (the program asked for none: Expect is dropped); a
    // destination sending them without end would hold the exchange past idleTimeout.
    u.on('information', safe(() => {
      if (++interim > MAX_INTERIM_RESPONSES) u.destroy(new BadResponse(`more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`));
    }));
    // Nothing asked for an upgrade (the Upgrade header is hop-by-hop): a 101 is not relayed.
    u.on('upgrade', safe((_upRes: IncomingMessage, socket: Duplex) => {
      socket.destroy();
      failed(new BadResponse('101 Switching Protocols to a request that asked for no upgrade'));
    }));
    // Node ends an exchange some ways without an error event: the program gets its answer anyway.
    // The error only then: an Error's stack trace cost more than the rest of an exchange's handling.
    u.on('close', safe(() => (settled ? afterSettled() : failed(new BadResponse('the connection closed before a response')))));
    u.on('response', safe((upRes: IncomingMessage) => {
      const problem = responseProblem(upRes.statusCode, upRes.statusMessage, upRes.rawHeaders);
      if (problem) {
        // Not reused: what else that connection holds is not trusted either.
        u.destroy();
        return failed(new BadResponse(problem));
      }
      settled = piping = true;
      clearTimeout(connectTimer);
      res.writeHead(upRes.statusCode!, upRes.statusMessage, endToEnd(upRes.rawHeaders) as unknown as Record<string, string>);
      upRes.pipe(res);
      upRes.on('error', safe(() => res.destroy()));
      if (started !== undefined) {
        res.on('finish', safe(() => {
          // The path is the program's (percent-encoded by the URL parser): bounded, never a value's end.
          ctx.exchanged({ method: req.method, host, port, path: target.pathname.slice(0, 200), status: upRes.statusCode, ms: Math.round(performance.now() - started), retried }, 'egress request');
        }));
      }
    }));
    if (noBody) {
      req.resume();
      u.end();
    } else req.pipe(u);
  };
  send(false);
  // The program went away: so does the upstream exchange.
  res.on('close', safe(() => {
    if (!res.writableFinished) up?.destroy();
  }));
  req.on('error', safe(() => up?.destroy()));
}
