// Fresh Confidential Space tokens bound to nonces (attested TLS: the nonce is a connection's
// TLS exporter value), from the launcher's teeserver. Each token is a new quote plus a round
// trip to Google's attestation service (~40 ms on a real VM; the launcher serializes quotes, about
// 25 a second per VM), so the init asks for at most `maxConcurrent` at once, VM-wide, lets at most
// `maxWaiting` more wait, and refuses past that: a flood of TLS clients cannot queue the init's
// memory or the launcher without bound. Nothing is cached: a nonce makes every token unique.
import { fetchCustomToken } from './teeserver.ts';

export const ATTESTER_DEFAULTS = { maxConcurrent: 4, maxWaiting: 256, timeoutMs: 10_000 };

export interface AttestRequest {
  audience: string;
  type: 'OIDC' | 'PKI';
  nonces: string[];
}

export interface Attester {
  /** A raw JWT for `req`; rejects when busy past the bound, or when the launcher fails. */
  token(req: AttestRequest): Promise<string>;
  stats(): { inFlight: number; waiting: number; issued: number; refusedBusy: number; failed: number };
}

/** What a listener needs of the attester (a worker thread's stand-in asks the init's one by message). */
export type TokenAttester = Pick<Attester, 'token'>;

export class AttesterBusy extends Error {
  readonly code = 'ERR_TEE_ATTESTER_BUSY';
}

export function createAttester(socketPath: string, o: Partial<typeof ATTESTER_DEFAULTS> = {}): Attester {
  const { maxConcurrent, maxWaiting, timeoutMs } = { ...ATTESTER_DEFAULTS, ...o };
  const waiting: (() => void)[] = [];
  const s = { inFlight: 0, waiting: 0, issued: 0, refusedBusy: 0, failed: 0 };

  const slot = (): Promise<void> => {
    if (s.inFlight < maxConcurrent) {
      s.inFlight++;
      return Promise.resolve();
    }
    if (waiting.length >= maxWaiting) {
      s.refusedBusy++;
      return Promise.reject(new AttesterBusy(`${maxConcurrent} attestation tokens in flight and ${maxWaiting} waiting: refused`));
    }
    // The slot passes straight from the finishing request to this one: inFlight stays counted.
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else s.inFlight--;
  };

  return {
    async token(req) {
      await slot();
      try {
        const jwt = await fetchCustomToken(socketPath, req, timeoutMs);
        s.issued++;
        return jwt;
      } catch (err) {
        s.failed++;
        throw err;
      } finally {
        release();
      }
    },
    stats: () => ({ ...s, waiting: waiting.length }),
  };
}
