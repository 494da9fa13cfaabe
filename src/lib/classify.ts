// What a failed call to Google means for tee-init: try again (until the deadline) or stop with a
// documented exit status. Errors arrive in several shapes: Secret Manager's SecretManagerError
// (src/secrets/sources/gcp.ts: gRPC `code` from the body, `httpStatusCode`), gaxios errors from google-auth-library (`status`,
// `response.status`, OAuth `response.data.error`), Node socket errors (`code: 'ECONNREFUSED'`).
import { InitError } from './errors.ts';
import { EXIT, type ExitCode } from './exit-codes.ts';

export type Verdict = { retry: true; why: string } | { retry: false; exit: ExitCode; why: string };

// gRPC status codes (google.rpc.Code)
const GRPC: Record<number, Verdict> = {
  3: { retry: false, exit: EXIT.config, why: 'invalid argument' },
  5: { retry: false, exit: EXIT.config, why: 'not found' },
  6: { retry: false, exit: EXIT.config, why: 'already exists' },
  7: { retry: false, exit: EXIT.noPerm, why: 'permission denied' },
  9: { retry: false, exit: EXIT.config, why: 'not usable (disabled or destroyed)' },
  11: { retry: false, exit: EXIT.config, why: 'out of range' },
  12: { retry: false, exit: EXIT.config, why: 'not implemented' },
  16: { retry: false, exit: EXIT.noPerm, why: 'unauthenticated' },
  1: { retry: true, why: 'cancelled' },
  2: { retry: true, why: 'unknown error' },
  4: { retry: true, why: 'deadline exceeded' },
  8: { retry: true, why: 'rate limited (resource exhausted)' },
  10: { retry: true, why: 'aborted' },
  13: { retry: true, why: 'internal error' },
  14: { retry: true, why: 'unavailable' },
  15: { retry: true, why: 'data loss' },
};

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED', 'UND_ERR_SOCKET', 'ERR_SOCKET_CONNECTION_TIMEOUT']);

interface ErrorLike {
  message?: string;
  code?: unknown;
  status?: unknown;
  httpStatusCode?: unknown;
  response?: { status?: unknown; data?: unknown };
  cause?: unknown;
}

function httpVerdict(status: number, oauthError: string | undefined): Verdict | undefined {
  if (status === 408 || status === 429 || status >= 500) return { retry: true, why: `HTTP ${status}` };
  if (status === 401 || status === 403) return { retry: false, exit: EXIT.noPerm, why: `permission denied (HTTP ${status})` };
  if (status === 404) return { retry: false, exit: EXIT.config, why: 'not found (HTTP 404)' };
  if (status === 400) {
    // STS: invalid_grant = the token does not satisfy the provider (its attribute condition,
    // audience or signature); invalid_target = no such provider.
    if (oauthError === 'invalid_grant' || oauthError === 'unauthorized_client') {
      return { retry: false, exit: EXIT.noPerm, why: `refused (${oauthError})` };
    }
    return { retry: false, exit: EXIT.config, why: `bad request${oauthError ? ` (${oauthError})` : ''} (HTTP 400)` };
  }
  if (status >= 400) return { retry: false, exit: EXIT.config, why: `HTTP ${status}` };
  return undefined;
}

export function classify(err: unknown, depth = 0): Verdict {
  if (err instanceof InitError) return { retry: false, exit: err.exitCode, why: err.message };
  const e = (err ?? {}) as ErrorLike;
  const data = e.response?.data as { error?: unknown } | undefined;
  const oauthError = typeof data?.error === 'string' ? data.error : undefined;
  const status = [e.httpStatusCode, e.response?.status, e.status].find((s): s is number => typeof s === 'number');
  if (typeof e.code === 'number' && GRPC[e.code]) {
    const v = GRPC[e.code]!;
    // REST mode maps every unknown 5xx to INTERNAL; say what actually came back.
    return status !== undefined ? { ...v, why: `${v.why} (HTTP ${status})` } : v;
  }
  if (status !== undefined) {
    const v = httpVerdict(status, oauthError);
    if (v) return v;
  }
  if (typeof e.code === 'string' && NETWORK.has(e.code)) return { retry: true, why: `network error ${e.code}` };
  if (/Could not load the default credentials/.test(e.message ?? '')) {
    return { retry: false, exit: EXIT.config, why: 'no application default credentials (set GOOGLE_APPLICATION_CREDENTIALS, or use type: confidential-space)' };
  }
  if (err instanceof UnusableAnswer) return { retry: true, why: 'unusable answer' };
  if (e.cause !== undefined && depth < 3) return classify(e.cause, depth + 1);
  // A programming error (ours or a library's) will not pass by retrying.
  if (err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError) {
    return { retry: false, exit: EXIT.software, why: `internal error (${err.name})` };
  }
  // Other unknown failures are retried: the deadline bounds them, and the last one is reported.
  return { retry: true, why: 'unexpected error' };
}

/** A short description of the error for messages: its own message, first line, bounded. */
export function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0]!.slice(0, 300);
}

/**
 * Said once when a name of Google's cannot be resolved: the usual cause is a run outside Google
 * Cloud with the default endpoints, and retrying for fetch.deadline in silence helps nobody.
 */
export function unresolvedGoogleHint(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = (e as Error & { cause?: unknown }).cause, depth++) {
    const { code, hostname } = e as NodeJS.ErrnoException & { hostname?: string };
    const host = hostname ?? /(?:ENOTFOUND|EAI_AGAIN) ([\w.-]+)/.exec(e.message)?.[1];
    if ((code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /ENOTFOUND|EAI_AGAIN/.test(e.message)) && host?.endsWith('.googleapis.com')) {
      return `${host} cannot be resolved: outside Google Cloud the default endpoints are unreachable; point endpoints: at an emulator (npm run serve-world prints the block to paste)`;
    }
  }
  return undefined;
}

/**
 * A remote service answered, but with nothing usable (no token, garbage JSON): its fault, not
 * ours, so never reported as an internal error; retried until the deadline like a 5xx.
 */
export class UnusableAnswer extends Error {
  override readonly name = 'UnusableAnswer';
}
