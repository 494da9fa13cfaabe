import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, type JWTPayload } from 'jose';
import { InitError } from '../lib/errors.ts';
import type { Config } from '../config/schema.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { readAtMost } from '../lib/read-bounded.ts';
import { fetchDefaultToken } from './teeserver.ts';

export interface TokenFileOptions {
  path: string;
  /** How long to wait for the launcher to write (or refresh an expired) token. */
  waitForMs: number;
  pollMs?: number;
  now?: () => number;
  /**
   * The launcher's socket: a token file past its exp is replaced by a default token from it
   * (the launcher does not refresh the file when refresh is disabled or Intel Trust Authority
   * is configured). Without it, an expired file is waited for.
   */
  teeserver?: { socketPath: string; timeoutMs: number } | undefined;
}

/** The config's default token: its file, and the teeserver once the file has expired. */
export function defaultTokenOptions(config: Pick<Config, 'attestation' | 'endpoints' | 'fetch'>): TokenFileOptions {
  return {
    path: config.attestation.tokenFile,
    waitForMs: config.attestation.waitFor,
    teeserver: { socketPath: config.endpoints.teeserver, timeoutMs: config.fetch.attemptTimeout },
  };
}

export interface AttestationToken {
  path: string;
  claims: JWTPayload;
  expiresAt: Date | undefined;
  /** Where it came from: the token file, or the teeserver because the file had expired. */
  source: 'file' | 'teeserver';
  /** Why the teeserver: the file's expiry (for the one line that says so). */
  fileExpiredAt?: Date | undefined;
}

/**
 * Waits for the launcher's attestation token file and decodes it. The launcher writes the file
 * before the workload starts and replaces it atomically (write + rename) well before it expires,
 * so a missing or expired token is waited for, up to waitForMs. The token itself is not kept:
 * whoever needs it re-reads the file (google-auth-library does), which always gives the freshest.
 */
export async function readAttestationToken(options: TokenFileOptions, log: Log, abort: AbortSignal): Promise<AttestationToken> {
  const now = options.now ?? Date.now;
  const deadline = now() + options.waitForMs;
  const pollMs = options.pollMs ?? 100;
  let waitingSaid = false;
  // While the file stays expired and the teeserver fails, ask it once a second, not every poll.
  let askedAt = -Infinity;
  let answer: ReadState | undefined;
  for (;;) {
    let state = await tryRead(options.path, now);
    if (state.kind === 'expired' && options.teeserver) {
      if (now() - askedAt >= TEESERVER_RETRY_MS) {
        askedAt = now();
        answer = await fromTeeserver(state, options.teeserver, now);
      }
      state = answer!;
    }
    if (state.kind === 'ok') return state.token;
    if (state.kind === 'fatal') throw state.error;
    if (now() >= deadline) throw state.error;
    if (!waitingSaid) {
      log.info({ tokenFile: options.path, waitForMs: options.waitForMs }, `${state.error.message}; waiting for the launcher`);
      waitingSaid = true;
    }
    await sleep(pollMs, undefined, { signal: abort }).catch(() => {
      throw abort.reason;
    });
  }
}

const TEESERVER_RETRY_MS = 1000;

type ReadState =
  | { kind: 'ok'; token: AttestationToken; jwt: string }
  | { kind: 'wait' | 'fatal'; error: InitError }
  | { kind: 'expired'; error: InitError; expiresAt: Date };

/**
 * The token to exchange now (the subject token of every federated identity): the file's, or,
 * once the file has expired, a fresh default token from the teeserver. Read afresh each time,
 * never kept.
 */
export async function currentToken(options: TokenFileOptions): Promise<string> {
  const now = options.now ?? Date.now;
  let state = await tryRead(options.path, now);
  if (state.kind === 'expired' && options.teeserver) state = await fromTeeserver(state, options.teeserver, now);
  if (state.kind === 'ok') return state.jwt;
  throw state.error;
}

/** The file expired: a default token from the launcher's socket, or why there is none. */
async function fromTeeserver(expired: Extract<ReadState, { kind: 'expired' }>, teeserver: { socketPath: string; timeoutMs: number }, now: () => number): Promise<ReadState> {
  let jwt: string;
  try {
    jwt = await fetchDefaultToken(teeserver.socketPath, teeserver.timeoutMs);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ...expired, error: new InitError(EXIT.noInput, `${expired.error.message}, and no default token came from the teeserver instead (${why})`) };
  }
  const token = decode(jwt, `the default token from teeserver ${teeserver.socketPath}`, now);
  if (token.kind !== 'ok') return { kind: 'fatal', error: token.error };
  return { kind: 'ok', jwt, token: { ...token.token, path: teeserver.socketPath, source: 'teeserver', fileExpiredAt: expired.expiresAt } };
}

/** A Confidential Space token is 1-2 KiB; anything past this is not one. */
const MAX_TOKEN_BYTES = 64 * 1024;

/**
 * The file's text, read without blocking and bounded (readAtMost); opened non-blocking, so a
 * FIFO cannot hang the open. Throws fs errors; a file that is not regular, or too big, is an
 * InitError.
 */
async function readToken(path: string): Promise<string> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    if (!(await file.stat()).isFile()) throw new InitError(EXIT.noInput, `attestation token ${path} is not a regular file: check attestation.tokenFile`);
    const data = await readAtMost(file, MAX_TOKEN_BYTES);
    if (data.length > MAX_TOKEN_BYTES) throw new InitError(EXIT.noInput, `attestation token ${path} is over ${MAX_TOKEN_BYTES / 1024} KiB: not a token; check attestation.tokenFile`);
    return data.toString('utf8').trim();
  } finally {
    await file.close();
  }
}

async function tryRead(path: string, now: () => number): Promise<ReadState> {
  let text: string;
  try {
    text = await readToken(path);
  } catch (err) {
    if (err instanceof InitError) return { kind: 'fatal', error: err };
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return { kind: 'wait', error: new InitError(EXIT.noInput, `attestation token ${path} does not exist: is this running in Confidential Space (or is attestation.tokenFile right)?`) };
    }
    return { kind: 'fatal', error: new InitError(EXIT.noInput, `attestation token ${path} is not readable (${code}): check the container user's access to it`) };
  }
  const state = decode(text, `attestation token ${path}`, now);
  if (state.kind !== 'ok') return state;
  return { ...state, token: { ...state.token, path } };
}

function decode(jwt: string, what: string, now: () => number): ReadState {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(jwt);
  } catch {
    return { kind: 'fatal', error: new InitError(EXIT.noInput, `${what} does not hold a JWT`) };
  }
  const expiresAt = typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : undefined;
  if (expiresAt && expiresAt.getTime() <= now()) {
    return { kind: 'expired', expiresAt, error: new InitError(EXIT.noInput, `${what} expired at ${expiresAt.toISOString()}: the launcher did not refresh it`) };
  }
  return { kind: 'ok', jwt, token: { path: '', claims, expiresAt, source: 'file' } };
}
