import { request } from 'node:http';
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';

export interface CustomTokenRequest {
  audience: string;
  nonces?: string[] | undefined;
  type: 'OIDC' | 'PKI';
}

/** Thrown for failures worth retrying (launcher busy, 5xx); anything else is an InitError. */
export class TeeserverUnavailable extends Error {}

const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Asks the Confidential Space launcher for a token with a custom audience (and nonces):
 * POST /v1/token over its unix socket. The answer is the raw JWT, not JSON.
 */
export function fetchCustomToken(socketPath: string, req: CustomTokenRequest, timeoutMs: number): Promise<string> {
  const body = JSON.stringify({ audience: req.audience, token_type: req.type, ...(req.nonces ? { nonces: req.nonces } : {}) });
  return tokenRequest(socketPath, body, timeoutMs, `the token request for audience ${JSON.stringify(req.audience)}`);
}

/**
 * A fresh default token (audience sts.googleapis.com, as in the token file): GET /v1/token. For
 * when the launcher does not refresh the file (refresh disabled, or Intel Trust Authority
 * configured) and the file's token has expired.
 */
export function fetchDefaultToken(socketPath: string, timeoutMs: number): Promise<string> {
  return tokenRequest(socketPath, undefined, timeoutMs, 'the default token request');
}

/** One request to the teeserver: POST with `body`, else GET. */
function tokenRequest(socketPath: string, body: string | undefined, timeoutMs: number, what: string): Promise<string> {
  const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const r = request(
      { socketPath, method: body === undefined ? 'GET' : 'POST', path: '/v1/token', host: 'localhost', timeout: timeoutMs, headers },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          // A token is a few KiB; a launcher that sends more is not answering this question.
          size += c.length;
          if (size > MAX_ANSWER_BYTES) return res.destroy(new TeeserverUnavailable(`teeserver ${socketPath} sent more than ${MAX_ANSWER_BYTES / 1024} KiB for ${what}`));
          chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8').trim();
          const status = res.statusCode ?? 0;
          if (status === 200) return resolve(text);
          // The launcher's error text describes our request, never a token; shown as JSON text.
          const why = JSON.stringify(text.slice(0, 200));
          if (status >= 400 && status < 500) {
            reject(new InitError(EXIT.config, `teeserver ${socketPath} refused ${what} (${status}): ${why}`));
          } else {
            reject(new TeeserverUnavailable(`teeserver ${socketPath} answered ${status} to ${what}: ${why}`));
          }
        });
        res.on('error', (e) => reject(e instanceof TeeserverUnavailable ? e : new TeeserverUnavailable(`teeserver ${socketPath}: ${e.message}`)));
      },
    );
    r.on('timeout', () => r.destroy(new TeeserverUnavailable(`teeserver ${socketPath} did not answer ${what} within ${timeoutMs} ms`)));
    r.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof TeeserverUnavailable) return reject(e);
      if (e.code === 'ENOENT') return reject(new InitError(EXIT.noInput, `teeserver socket ${socketPath} does not exist: ${what} needs the Confidential Space launcher (or endpoints.teeserver)`));
      reject(new TeeserverUnavailable(`teeserver ${socketPath}: ${e.code ?? e.message}`));
    });
    r.end(body);
  });
}
