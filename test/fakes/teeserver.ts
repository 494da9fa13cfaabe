// The Confidential Space launcher's token server: HTTP over a UNIX socket. Like the real one
// (go-tpm-tools launcher/teeserver) it answers with the raw JWT as `text/html`, errors as
// plain text, and applies the attestation service's limits on custom tokens.
import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AttestationKey, Claims } from './attestation.ts';
import { applyFault, FaultTable, type Fault, type FaultKind } from './faults.ts';
import { closeServer, Delays, readBody, reply } from './http.ts';
import { RequestLog } from './request-log.ts';

const KNOWN_FIELDS = new Set(['audience', 'nonces', 'token_type', 'token_type_options']);
const TOKEN_TYPES = new Set(['OIDC', 'PKI']);
const MAX_AUDIENCE_BYTES = 512;
// The limits Google documents for custom tokens (the stricter of the two the service has had).
const NONCES = { min: 1, max: 6, minBytes: 10, maxBytes: 74 };

export interface TeeServerOptions {
  socketPath: string;
  key: AttestationKey;
  /** The claims of a default token (aud is replaced for custom tokens); called for every token. */
  claims: () => Claims;
}

export interface TeeRequestRecord {
  method: string;
  path: string;
  at: number;
  /** The parsed POST body, when it was JSON. */
  options?: Record<string, unknown>;
  status?: number;
  fault?: FaultKind;
}

export class FakeTeeServer {
  readonly socketPath: string;
  readonly requests: TeeRequestRecord[];
  #log = new RequestLog<TeeRequestRecord>();
  #server: Server;
  #options: TeeServerOptions;
  #faults = new FaultTable<'teeserver'>();
  #delays = new Delays();

  constructor(server: Server, options: TeeServerOptions) {
    this.#server = server;
    this.#options = options;
    this.socketPath = options.socketPath;
    this.requests = this.#log.entries;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch((err: unknown) => reply(res, 500, `fake teeserver failed: ${(err as Error).message}`, 'text/html'));
    });
  }

  /** Faults as for the GCP fake (status, body, times, latencyMs, hang, dropConnection). */
  fault(fault: Fault): void {
    this.#faults.set('teeserver', fault);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  /** Resolves with the first request (past or future) matching `match`. */
  waitForRequest(match: (r: TeeRequestRecord) => boolean, timeoutMs = 5000): Promise<TeeRequestRecord> {
    return this.#log.waitFor(match, timeoutMs);
  }

  async close(): Promise<void> {
    this.#delays.close();
    await closeServer(this.#server);
    rmSync(this.socketPath, { force: true });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record: TeeRequestRecord = { method: req.method ?? '', path: new URL(req.url ?? '/', 'http://tee').pathname, at: Date.now() };
    this.#log.add(record);
    const body = await readBody(req);
    const send = (status: number, text: string) => {
      record.status = status;
      reply(res, status, text, 'text/html');
      this.#log.changed();
    };
    const fault = this.#faults.take('teeserver');
    if (fault) {
      const done = await applyFault(fault, res, (ms) => this.#delays.wait(ms), (status, b) =>
        send(status, b === undefined ? `fault injected: ${status}` : typeof b === 'string' ? b : JSON.stringify(b)),
      );
      record.fault = done.kind;
      this.#log.changed();
      if (done.answered) return;
    }
    if (record.path !== '/v1/token') return send(404, '404 page not found\n');
    if (req.method === 'GET') return send(200, await this.#sign({}));
    if (req.method !== 'POST') return send(400, `TEE server received an invalid HTTP method: ${req.method}`);

    let options: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object');
      options = parsed as Record<string, unknown>;
    } catch (err) {
      return send(400, `failed to parse POST body as TokenOptions: ${(err as Error).message}`);
    }
    record.options = options;
    const unknown = Object.keys(options).find((k) => !KNOWN_FIELDS.has(k));
    if (unknown !== undefined) return send(400, `failed to parse POST body as TokenOptions: json: unknown field "${unknown}"`);
    const { audience, nonces, token_type: tokenType } = options;
    if (tokenType === undefined || tokenType === '') return send(400, 'token_type is a required parameter');
    const invalid = (why: string) => send(400, `failed to get custom token: rpc error: code = InvalidArgument desc = ${why}`);
    if (typeof tokenType !== 'string' || !TOKEN_TYPES.has(tokenType)) return invalid(`unsupported token_type ${JSON.stringify(tokenType)}`);
    if (typeof audience !== 'string' || audience === '') return invalid('audience must be provided');
    if (Buffer.byteLength(audience) > MAX_AUDIENCE_BYTES) return invalid(`audience is longer than ${MAX_AUDIENCE_BYTES} bytes`);
    let nonceList: string[] = [];
    if (nonces !== undefined && nonces !== null) {
      if (!Array.isArray(nonces) || !nonces.every((n): n is string => typeof n === 'string')) return invalid('nonces must be a list of strings');
      nonceList = nonces;
      if (nonceList.length < NONCES.min || nonceList.length > NONCES.max) {
        return invalid(`between ${NONCES.min} and ${NONCES.max} nonces are allowed, got ${nonceList.length}`);
      }
      const bad = nonceList.find((n) => Buffer.byteLength(n) < NONCES.minBytes || Buffer.byteLength(n) > NONCES.maxBytes);
      if (bad !== undefined) return invalid(`each nonce must be ${NONCES.minBytes} to ${NONCES.maxBytes} bytes, got ${Buffer.byteLength(bad)}`);
    }
    const extra: Claims = { aud: audience };
    if (nonceList.length > 0) extra.eat_nonce = nonceList.length === 1 ? nonceList[0] : nonceList;
    return send(200, await this.#sign(extra));
  }

  #sign(extra: Claims): Promise<string> {
    // Fresh iat/exp for every token, as the attestation service issues a new one each time.
    const { iat: _iat, nbf: _nbf, exp: _exp, ...claims } = this.#options.claims();
    return this.#options.key.sign({ ...claims, ...extra });
  }
}

/** Starts the token server on `socketPath` (removed again by close()). */
export async function startTeeServer(options: TeeServerOptions): Promise<FakeTeeServer> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => (server.off('error', reject), resolve()));
  });
  return new FakeTeeServer(server, options);
}
