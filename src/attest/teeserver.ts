import { request } from 'node:http';
import { InitError } from '../errors.ts';
import { EXIT } from '../exit-codes.ts';

export interface CustomTokenRequest {
  audience: string;
  nonces?: string[] | undefined;
  type: 'OIDC' | 'PKI';
}

/** Thrown for failures worth retrying (launcher busy, 5xx); anything else is an InitError. */
export class TeeserverUnavailable extends Error {}

/**
 * Asks the Confidential Space launcher for a token with a custom audience (and nonces):
 * POST /v1/token over its unix socket. The answer is the raw JWT, not JSON.
 */
export function fetchCustomToken(socketPath: string, req: CustomTokenRequest, timeoutMs: number): Promise<string> {
  const body = JSON.stringify({ audience: req.audience, token_type: req.type, ...(req.nonces ? { nonces: req.nonces } : {}) });
  return new Promise((resolve, reject) => {
    const r = request(
      { socketPath, method: 'POST', path: '/v1/token', host: 'localhost', timeout: timeoutMs, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8').trim();
          const status = res.statusCode ?? 0;
          if (status === 200) return resolve(text);
          // The launcher's error text describes our request, never a token.
          const why = text.slice(0, 200);
          if (status >= 400 && status < 500) {
            reject(new InitError(EXIT.config, `teeserver ${socketPath} refused the token request for audience ${JSON.stringify(req.audience)} (${status}): ${why}`));
          } else {
            reject(new TeeserverUnavailable(`teeserver ${socketPath} answered ${status}: ${why}`));
          }
        });
        res.on('error', (e) => reject(new TeeserverUnavailable(`teeserver ${socketPath}: ${e.message}`)));
      },
    );
    r.on('timeout', () => r.destroy(new TeeserverUnavailable(`teeserver ${socketPath} did not answer within ${timeoutMs} ms`)));
    r.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof TeeserverUnavailable) return reject(e);
      if (e.code === 'ENOENT') return reject(new InitError(EXIT.noInput, `teeserver socket ${socketPath} does not exist: custom-audience tokens need the Confidential Space launcher (or endpoints.teeserver)`));
      reject(new TeeserverUnavailable(`teeserver ${socketPath}: ${e.code ?? e.message}`));
    });
    r.end(body);
  });
}
