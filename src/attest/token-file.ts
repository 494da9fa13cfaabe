import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, type JWTPayload } from 'jose';
import { InitError } from '../errors.ts';
import { EXIT } from '../exit-codes.ts';
import type { Log } from '../log.ts';
import { readAtMost } from '../read-bounded.ts';

export interface TokenFileOptions {
  path: string;
  /** How long to wait for the launcher to write (or refresh an expired) token. */
  waitForMs: number;
  pollMs?: number;
  now?: () => number;
}

export interface AttestationToken {
  path: string;
  claims: JWTPayload;
  expiresAt: Date | undefined;
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
  for (;;) {
    const state = await tryRead(options.path, now);
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

type ReadState = { kind: 'ok'; token: AttestationToken } | { kind: 'wait' | 'fatal'; error: InitError };

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
  let claims: JWTPayload;
  try {
    claims = decodeJwt(text);
  } catch {
    return { kind: 'fatal', error: new InitError(EXIT.noInput, `attestation token ${path} does not hold a JWT`) };
  }
  const expiresAt = typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : undefined;
  if (expiresAt && expiresAt.getTime() <= now()) {
    return { kind: 'wait', error: new InitError(EXIT.noInput, `attestation token ${path} expired at ${expiresAt.toISOString()}: the launcher should have refreshed it`) };
  }
  return { kind: 'ok', token: { path, claims, expiresAt } };
}
