// One loopback HTTP server that answers as STS, IAM credentials and Secret Manager, on their
// real paths and wire formats, from a plain-data description of the world. The world object
// stays live: a test may change it (add a secret, disable a version) while the fake runs.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { JSONWebKeySet } from 'jose';
import { createAttestationKey, type AttestationKey, type Claims } from './attestation.ts';
import { googleError, oauthError } from './errors.ts';
import { applyFault, FaultTable, type Fault, type FaultKind, type FaultMatch } from './faults.ts';
import { generateAccessToken, generateIdToken, GOOGLE_CERTS_PATH } from './iamcredentials.ts';
import { bearer, closeServer, Delays, listenLoopback, readBody, reply, replyJson } from './http.ts';
import { principalId, TokenStore } from './principals.ts';
import { RequestLog } from './request-log.ts';
import { accessSecretVersion, findSecret, parseAccessPath } from './secretmanager.ts';

/** Where the fake serves the attestation service's JWKS (the real one: from its discovery document). */
export const ATTESTATION_JWKS_PATH = '/attestation/jwks';
import { exchange } from './sts.ts';

export type GcpApi = 'sts' | 'iam' | 'sm';

export interface Provider {
  /** Audiences the provider accepts in the subject token. Default: ['https://sts.googleapis.com']. */
  allowedAudiences?: string[];
  /** Expected `iss` (a trailing slash is ignored). Default: https://confidentialcomputing.googleapis.com. */
  issuer?: string;
  /** The attribute condition: true admits; false or a reason string rejects (invalid_grant). */
  condition?: (claims: Claims) => boolean | string;
}

export interface ServiceAccount {
  /** Grants of roles/iam.workloadIdentityUser: provider names, principalSet://… or principal://… */
  impersonators: string[];
}

export type VersionState = 'ENABLED' | 'DISABLED' | 'DESTROYED';

export interface SecretVersion {
  data: Buffer | string;
  state?: VersionState;
  /** Leave payload.dataCrc32c out of the response (the field is optional in the API). */
  omitCrc32c?: boolean;
}

export interface Secret {
  /** Version N is versions[N-1]. */
  versions: SecretVersion[];
  /** Who may access it: provider names, principalSet://…, principal://…, SA emails or serviceAccount:EMAIL. */
  access: string[];
  /** A regional secret, reachable only as projects/P/locations/L/secrets/S. */
  location?: string;
  /** Version aliases (`versions/prod`): alias → version number. */
  aliases?: Record<string, number>;
}

export interface GcpWorld {
  /** Public keys STS trusts for attestation tokens (what the issuer's jwks_uri serves). */
  jwks: JSONWebKeySet;
  /** By resource name: projects/N/locations/global/workloadIdentityPools/POOL/providers/P. */
  providers: Record<string, Provider>;
  /** By email. */
  serviceAccounts?: Record<string, ServiceAccount>;
  /** By resource name: projects/P/secrets/S or projects/P/locations/L/secrets/S. */
  secrets?: Record<string, Secret>;
  /** Project id → number. Requests may use either; responses use the number, as Google's do. */
  projectNumbers?: Record<string, string>;
}

export interface Outcome {
  status: number;
  body: unknown;
}

export interface RequestRecord {
  api: GcpApi | 'unknown';
  method: string;
  /** Path without the query string. */
  path: string;
  /** Date.now() at arrival. */
  at: number;
  /** STS: the requested audience (//iam.googleapis.com/projects/…/providers/P). */
  audience?: string;
  /** Who the request authenticated as (principal://… or serviceAccount:EMAIL); STS: who was issued a token. */
  principal?: string;
  /** IAM: the account asked for. */
  serviceAccount?: string;
  /** IAM generateIdToken: the audience asked for. */
  idTokenAudience?: string;
  /** SM: the world's name of the secret (or the requested one if unknown) and the version asked for. */
  secret?: string;
  version?: string;
  /** Absent until answered; stays absent for a hang or a dropped connection. */
  status?: number;
  fault?: FaultKind;
}

export interface FakeGcpOptions {
  /** Server-side validity of issued access tokens (they still claim 3600 s). */
  expireTokensAfterMs?: number;
  /** Lifetime of ID tokens from generateIdToken (Google's: 3600 s). */
  idTokenLifetimeS?: number;
  /** The clock ID tokens are stamped with (iat/exp), so tests can move time without waiting. */
  now?: () => number;
  /** A fixed port on 127.0.0.1 (serve-world --port); default a free one. */
  port?: number;
}

const IMPERSONATE_PATH = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generate(AccessToken|IdToken)$/;

export class FakeGcp {
  readonly world: GcpWorld;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** In the shape of tee-init's `endpoints` config section. */
  readonly endpoints: { sts: string; iamcredentials: string; secretmanager: string };
  /** Every request, in arrival order; entries are updated when answered. */
  readonly requests: RequestRecord[];
  /** Server-side validity of tokens issued from now on; undefined = what the token claims. */
  expireTokensAfterMs: number | undefined;
  /** Lifetime of ID tokens minted from now on. */
  idTokenLifetimeS: number;
  /** The clock of ID tokens (iat/exp). */
  now: () => number;
  /** Google's ID-token signing key; its public half is served at /oauth2/v3/certs. */
  readonly googleKey: AttestationKey;

  #server: Server;
  #faults = new FaultTable<GcpApi>();
  #tokens = new TokenStore();
  #delays = new Delays();
  #log = new RequestLog<RequestRecord>();

  constructor(world: GcpWorld, server: Server, port: number, googleKey: AttestationKey, options: FakeGcpOptions) {
    this.world = world;
    this.googleKey = googleKey;
    this.idTokenLifetimeS = options.idTokenLifetimeS ?? 3600;
    this.now = options.now ?? Date.now;
    this.#server = server;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.endpoints = { sts: `${this.url}/v1/token`, iamcredentials: this.url, secretmanager: this.url };
    this.expireTokensAfterMs = options.expireTokensAfterMs;
    this.requests = this.#log.entries;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) replyJson(res, 500, googleError(500, `fake failed: ${(err as Error).message}`));
      });
    });
  }

  /** Injects a fault for an API, optionally only for one secret; replaces the previous rule for the same target. */
  fault(api: GcpApi, fault: Fault, match?: FaultMatch): void {
    this.#faults.set(api, fault, match);
  }

  clearFaults(api?: GcpApi): void {
    this.#faults.clear(api);
  }

  /** Every access token issued so far stops being accepted (401 UNAUTHENTICATED). */
  expireTokens(): void {
    this.#tokens.expireAll();
  }

  /** Requests of one API. */
  requestsOf(api: GcpApi): RequestRecord[] {
    return this.requests.filter((r) => r.api === api);
  }

  /** Resolves with the first request (past or future) matching `match`, re-checked whenever one arrives or is answered. */
  waitForRequest(match: (r: RequestRecord) => boolean, timeoutMs = 5000): Promise<RequestRecord> {
    return this.#log.waitFor(match, timeoutMs);
  }

  /** Closes the server and every connection, hung ones included. */
  async close(): Promise<void> {
    this.#delays.close();
    await closeServer(this.#server);
  }

  #lifetime(defaultMs: number): number {
    return this.expireTokensAfterMs ?? defaultMs;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method === 'GET' && url.pathname === GOOGLE_CERTS_PATH) return replyJson(res, 200, this.googleKey.jwks);
    // The attestation service's keys (what verifiers of Confidential Space tokens use):
    // `endpoints.jwks` / `verify.attestation.jwks` / `tee-init verify --jwks` point here.
    if (req.method === 'GET' && url.pathname === ATTESTATION_JWKS_PATH) return replyJson(res, 200, this.world.jwks);
    const record: RequestRecord = { api: 'unknown', method: req.method ?? '', path: url.pathname, at: Date.now() };
    this.#log.add(record);
    const body = await readBody(req);
    const send = (status: number, payload: unknown) => {
      record.status = status;
      if (typeof payload === 'string' || Buffer.isBuffer(payload)) reply(res, status, payload, 'text/html; charset=UTF-8');
      else replyJson(res, status, payload);
      this.#log.changed();
    };

    const route = this.#route(req, url, body, record);
    this.#log.changed();
    if (!route) {
      send(404, googleError(404, `The requested URL ${url.pathname} was not found on this server.`));
      return;
    }
    const fault = this.#faults.take(route.api, route.secretNames);
    let corruptCrc = false;
    if (fault) {
      const defaultBody = (status: number) =>
        route.api === 'sts' ? oauthError(status >= 500 ? 'server_error' : 'invalid_request', `fault injected: ${status}`) : googleError(status, `fault injected: ${status}`);
      const done = await applyFault(fault, res, (ms) => this.#delays.wait(ms), (status, b) => send(status, b ?? defaultBody(status)));
      record.fault = done.kind;
      this.#log.changed();
      if (done.answered) return;
      corruptCrc = fault.corruptCrc === true;
    }
    const outcome = await route.handle(corruptCrc);
    send(outcome.status, outcome.body);
  }

  /** Works out which API a request is for and what the log should say about it, before any fault applies. */
  #route(
    req: IncomingMessage,
    url: URL,
    body: Buffer,
    record: RequestRecord,
  ): { api: GcpApi; secretNames?: string[]; handle: (corruptCrc: boolean) => Promise<Outcome> | Outcome } | undefined {
    const world = this.world;
    if (req.method === 'POST' && url.pathname === '/v1/token') {
      record.api = 'sts';
      const form = new URLSearchParams(body.toString('utf8'));
      record.audience = form.get('audience') ?? undefined;
      return {
        api: 'sts',
        handle: async () => {
          if (!/^application\/x-www-form-urlencoded\b/.test(req.headers['content-type'] ?? '')) {
            return { status: 400, body: oauthError('invalid_request', 'Content-Type must be application/x-www-form-urlencoded.') };
          }
          const result = await exchange(world, this.#tokens, form, this.#lifetime(3600_000));
          if (result.principal) record.principal = principalId(result.principal);
          return result;
        },
      };
    }
    const impersonate = req.method === 'POST' ? IMPERSONATE_PATH.exec(url.pathname) : null;
    if (impersonate) {
      record.api = 'iam';
      const email = decodeURIComponent(impersonate[1]!);
      const caller = this.#tokens.lookup(bearer(req));
      record.serviceAccount = email;
      if (caller) record.principal = principalId(caller);
      if (impersonate[2] === 'IdToken') {
        try {
          record.idTokenAudience = String((JSON.parse(body.toString('utf8')) as { audience?: unknown }).audience);
        } catch {
          // the handler answers 400
        }
        return {
          api: 'iam',
          handle: () =>
            generateIdToken(world, this.#tokens.lookup(bearer(req)), email, body, this.googleKey, { lifetimeS: this.idTokenLifetimeS, now: this.now }),
        };
      }
      return {
        api: 'iam',
        handle: () => generateAccessToken(world, this.#tokens, this.#tokens.lookup(bearer(req)), email, body, this.expireTokensAfterMs),
      };
    }
    const ref = req.method === 'GET' ? parseAccessPath(url.pathname) : undefined;
    if (ref) {
      record.api = 'sm';
      const found = findSecret(world, ref);
      const caller = this.#tokens.lookup(bearer(req));
      record.secret = found?.key ?? ref.requested;
      record.version = ref.version;
      if (caller) record.principal = principalId(caller);
      return {
        api: 'sm',
        secretNames: found ? [found.key, ref.requested] : [ref.requested],
        // Looked up again: the world or the token may have changed during an injected latency.
        handle: (corruptCrc) => accessSecretVersion(world, this.#tokens.lookup(bearer(req)), ref, findSecret(world, ref), { corruptCrc }),
      };
    }
    return undefined;
  }
}

/** Starts the fake on 127.0.0.1 and a free port (or options.port). */
export async function startFakeGcp(world: GcpWorld, options: FakeGcpOptions = {}): Promise<FakeGcp> {
  const server = createServer({ keepAliveTimeout: 5000 });
  const port = await listenLoopback(server, options.port);
  return new FakeGcp(world, server, port, await createAttestationKey('google-fake'), options);
}
