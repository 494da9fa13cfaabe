import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from './duration.ts';
import { InitError } from './errors.ts';
import { EXIT } from './exit-codes.ts';
import type { Log } from './log.ts';
import { classify, errorText, unresolvedGoogleHint } from './classify.ts';

export interface RetryPolicy {
  /** Absolute time (ms since the epoch) after which nothing more is tried. */
  deadline: number;
  deadlineMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  attemptTimeoutMs: number;
  now?: () => number;
  random?: () => number;
}

/** An attempt needs at least this long to be worth making. */
const MIN_ATTEMPT_MS = 50;

class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'AttemptTimeout';
  }
}

/**
 * Runs `attempt` until it succeeds, fails for good (classify), or the deadline passes.
 * Backoff doubles from initialBackoffMs up to maxBackoffMs, with jitter (half fixed, half
 * random) so that many secrets do not retry in lock-step. `what` names the thing (the secret,
 * the identity) in messages: "secret ca (projects/..): permission denied".
 */
export async function retrying<T>(
  what: string,
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  abort: AbortSignal,
  log: Log,
): Promise<T> {
  const now = policy.now ?? Date.now;
  const random = policy.random ?? Math.random;
  let lastWhy = '';
  let hinted = false;
  for (let n = 0; ; n++) {
    if (abort.aborted) throw abort.reason;
    const remaining = policy.deadline - now();
    const timeoutMs = Math.max(1, Math.min(policy.attemptTimeoutMs, remaining));
    try {
      return await withTimeout(attempt(), timeoutMs);
    } catch (err) {
      if (abort.aborted) throw abort.reason;
      const v = err instanceof AttemptTimeout ? { retry: true as const, why: err.message } : classify(err);
      if (!v.retry) {
        const text = err instanceof InitError ? '' : `: ${errorText(err)}`;
        throw new InitError(v.exit, `${what}: ${v.why}${text}`, { attempts: n + 1 });
      }
      // An attempt cut short by the deadline says nothing new: keep the previous reason.
      const truncated = err instanceof AttemptTimeout && timeoutMs < policy.attemptTimeoutMs;
      if (!truncated || lastWhy === '') lastWhy = err instanceof AttemptTimeout ? v.why : `${v.why}: ${errorText(err)}`;
      const hint = hinted ? undefined : unresolvedGoogleHint(err);
      if (hint) {
        hinted = true;
        log.warn({ what }, `${what}: ${hint}`);
      }
    }
    const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** n);
    const delay = Math.round(base / 2 + (random() * base) / 2);
    const left = policy.deadline - now();
    // No time left for a real attempt after the pause: report now, with the real reason.
    if (left <= delay + MIN_ATTEMPT_MS) {
      throw new InitError(EXIT.unavailable, `${what}: still unavailable after the ${formatDuration(policy.deadlineMs)} fetch.deadline (${n + 1} attempts): ${lastWhy}`, { attempts: n + 1 });
    }
    log.warn({ attempt: n + 1, retryInMs: delay, why: lastWhy }, `${what}: ${lastWhy}; retrying`);
    await sleep(delay, undefined, { signal: abort }).catch(() => {
      throw abort.reason;
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttemptTimeout(ms)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
