// `type: metadata`: the GCE metadata protocol on loopback, so that Google's client libraries in
// the program (Node gcp-metadata, Python google-auth, Go, gcloud) get a collaborator's
// federated identity with no code change: GCE_METADATA_HOST points them here.
// Like the real server: requests need `Metadata-Flavor: Google` and must not carry
// X-Forwarded-For (an SSRF guard: a request relayed by some proxy is refused), answers carry
// `Metadata-Flavor: Google`, JSON is `application/json` exactly (python google-auth 1.5 checks).
// The config side (schema, the program's env) is src/config/listeners/metadata.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetadataConfig } from '../../../config/listeners/metadata.ts';
import type { AccountInfo } from '../../../credentials/token-types.ts';
import { formatHostPort } from '../../../lib/address.ts';
import { createFaultSink, guard } from '../../boundary.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn } from '../../../lib/log-limit.ts';
import { errorText } from '../../../lib/classify.ts';
import type { ListenerHandle, ListenerType } from '../../listener.ts';
import { atDebug, boundedHttpServer, closeServer, countConnections, fromLoopback, listenOn } from '../../loopback-http.ts';
import { notFound, route, type Answer, type MetadataSources } from './paths.ts';

function send(res: ServerResponse, a: Answer): void {
  const body = a.json ? JSON.stringify(a.body) : a.text;
  const type = a.json ? 'application/json' : a.status === 404 ? 'text/html; charset=UTF-8' : 'application/text';
  res.writeHead(a.status, { 'Metadata-Flavor': 'Google', 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), Server: 'Metadata Server for VM', 'X-Frame-Options': 'SAMEORIGIN', 'X-XSS-Protection': '0' });
  res.end(body);
}

/** The runtime side of `type: metadata` (its entry in the table: ./type.ts). */
export const metadataRuntime: Pick<ListenerType<MetadataConfig>, 'start'> = {
  async start(config, env): Promise<ListenerHandle> {
    const known: AccountInfo = env.tokens.account?.(config.credentials) ?? {};
    const account: AccountInfo = {
      email: config.email ?? known.email,
      projectId: config.projectId ?? known.projectId,
      projectNumber: config.numericProjectId ?? known.projectNumber,
    };
    let idToken: MetadataSources['idToken'];
    try {
      idToken = env.tokens.source({ kind: 'id-token', credentials: config.credentials });
    } catch {
      idToken = undefined; // no service account: /identity answers 404, as a VM without one
    }
    const sources: MetadataSources = {
      account,
      scopes: config.scopes,
      otherScopes: (count) =>
        scopesNoted({ count }, `metadata server: a client asked (?scopes=) for ${count} scope(s) not in ${env.field ?? `listeners.${env.name}`}.scopes; its token carries those configured (add a scope there if an API answers "insufficient scopes")`),
      accessToken: env.tokens.source({ kind: 'access-token', credentials: config.credentials, scopes: [...config.scopes] }),
      idToken,
      now: Date.now,
    };
    const counters = { requests: 0, refused: 0, tokenErrors: 0 };
    const refused = limitedWarn(env.log, 'metadata refusals', LOG_LIMIT_DEFAULTS);
    const tokenFailed = limitedWarn(env.log, 'metadata token failures', LOG_LIMIT_DEFAULTS);
    // Worth one line now and then, not one per token refresh of every client.
    const scopesNoted = limitedWarn(env.log, 'metadata scopes not configured', { burst: 1, windowMs: 600_000 });
    const served = limitedWarn(atDebug(env.log), 'metadata requests', { burst: 100, windowMs: 1_000 });
    const fault = createFaultSink(env.log, `listener ${env.name}`);

    const handle = async (req: IncomingMessage, res: ServerResponse) => {
      counters.requests++;
      let url: URL | undefined;
      try {
        url = new URL(req.url ?? '/', 'http://metadata.google.internal');
      } catch {
        url = undefined; // `//`, `http://[`: what the HTTP parser lets through and the URL parser does not
      }
      // The program's path (percent-encoded by the URL parser), bounded for the log.
      const path = url?.pathname.slice(0, 200) ?? '(not a path)';
      const no = (status: number, why: string) => {
        counters.refused++;
        refused({ status, path }, `metadata server refused a request: ${why}`);
        send(res, { status, text: `${why}\n` });
      };
      if (!url) return no(400, 'the request target is not a URL path');
      if (!fromLoopback(req.socket.remoteAddress)) return no(403, 'not from loopback');
      if (req.headers['x-forwarded-for'] !== undefined) return no(403, 'X-Forwarded-For present: a relayed request is refused');
      if ((req.headers['metadata-flavor'] ?? '').toString().toLowerCase() !== 'google') return no(403, 'Missing required header: Metadata-Flavor: Google');
      if (req.method !== 'GET' && req.method !== 'HEAD') return no(405, `method ${req.method} not allowed`);
      if (url.searchParams.get('wait_for_change') === 'true') return no(400, 'wait_for_change is not supported');
      const h = route(url.pathname, sources);
      if (!h) {
        served({ path, status: 404 }, 'metadata request');
        return send(res, notFound());
      }
      let a: Answer;
      try {
        a = await h(url.searchParams, sources);
      } catch (err) {
        counters.tokenErrors++;
        tokenFailed({ path }, `metadata server: no token for credentials ${config.credentials}: ${errorText(err)}`);
        // A remote service's words may hold anything (control bytes, escapes): printable only.
        return send(res, { status: 503, text: `could not get a token for credentials ${config.credentials}: ${errorText(err).replace(/[^\x20-\x7e]/g, '?')}\n` });
      }
      if (!a.json && a.refused !== undefined) return no(a.status, a.refused);
      if (url.searchParams.get('alt') === 'json' && !a.json && a.status === 200) a = { status: 200, json: true, body: a.text };
      send(res, a);
      served({ path, status: a.status }, 'metadata request');
    };

    // GET and HEAD only, no body: the whole request is bounded by the head's deadline.
    const server = boundedHttpServer(config.headersTimeout, config.headersTimeout);
    server.maxConnections = 256;
    server.on(
      'request',
      guard((err, req, res) => fault(err, { kind: 'request' }, req, res), handle),
    );
    const connections = countConnections(server, fault);
    const address = await listenOn(server, config.listen, env.name, env.log, env.reusePort);
    env.log.info({ listen: formatHostPort(address), credentials: config.credentials, email: account.email, projectId: account.projectId }, 'metadata server listening');
    let closing: Promise<void> | undefined;
    return {
      address,
      stats: () => ({
        metadata_requests_total: counters.requests,
        metadata_refused_total: counters.refused,
        metadata_token_errors_total: counters.tokenErrors,
        metadata_connections: connections(),
        connection_faults_total: fault.count,
      }),
      reload: async () => {},
      close: () => (closing ??= closeServer(server)),
    };
  },
};
