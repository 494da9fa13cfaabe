// One token per audience, minted on demand and kept until shortly before it expires. A token
// near its end is refreshed in the background while the current one is still handed out; an
// expired (or nearly expired) one makes callers wait for the refresh. Concurrent callers share
// one mint (single flight), so 100 requests at once cost one round trip to Google.
import type { Token } from '../token-types.ts';

export interface CacheTiming {
  now: () => number;
  /** Refresh in the background once less than this remains (capped at a quarter of the lifetime). */
  refreshAheadMs: number;
  /** Never hand out a token with less than this left (capped at a tenth of the lifetime). */
  minValidityMs: number;
  /** Audiences kept; the least recently used goes first. */
  maxEntries: number;
}

export const DEFAULT_TIMING: Omit<CacheTiming, 'now'> = { refreshAheadMs: 5 * 60_000, minValidityMs: 30_000, maxEntries: 256 };

interface Entry {
  token?: Token;
  obtainedAt: number;
  pending?: Promise<Token>;
}

export interface CacheStats {
  hits: number;
  mints: number;
  failures: number;
}

export class TokenCache {
  readonly #mint: (audience: string) => Promise<Token>;
  readonly #timing: CacheTiming;
  readonly #onBackgroundFailure: (audience: string, err: unknown) => void;
  readonly #entries = new Map<string, Entry>();
  readonly stats: CacheStats = { hits: 0, mints: 0, failures: 0 };

  constructor(mint: (audience: string) => Promise<Token>, timing: CacheTiming, onBackgroundFailure: (audience: string, err: unknown) => void) {
    this.#mint = mint;
    this.#timing = timing;
    this.#onBackgroundFailure = onBackgroundFailure;
  }

  get(audience: string): Promise<Token> {
    const entry = this.#touch(audience);
    const token = entry.token;
    if (token) {
      const now = this.#timing.now();
      const lifetime = Math.max(0, token.expiresAt - entry.obtainedAt);
      const left = token.expiresAt - now;
      if (left > Math.min(this.#timing.refreshAheadMs, lifetime / 4)) {
        this.stats.hits++;
        return Promise.resolve(token);
      }
      if (left > Math.min(this.#timing.minValidityMs, lifetime / 10)) {
        this.stats.hits++;
        if (!entry.pending) this.#refresh(audience, entry).catch((err: unknown) => this.#onBackgroundFailure(audience, err));
        return Promise.resolve(token);
      }
    }
    return entry.pending ?? this.#refresh(audience, entry);
  }

  #touch(audience: string): Entry {
    let entry = this.#entries.get(audience);
    if (entry) this.#entries.delete(audience);
    else entry = { obtainedAt: 0 };
    this.#entries.set(audience, entry);
    if (this.#entries.size > this.#timing.maxEntries) {
      const oldest = this.#entries.keys().next().value!;
      this.#entries.delete(oldest);
    }
    return entry;
  }

  #refresh(audience: string, entry: Entry): Promise<Token> {
    this.stats.mints++;
    const started = this.#timing.now();
    const p = this.#mint(audience).then(
      (token) => {
        entry.token = token;
        entry.obtainedAt = started;
        entry.pending = undefined;
        return token;
      },
      (err: unknown) => {
        this.stats.failures++;
        entry.pending = undefined;
        throw err;
      },
    );
    entry.pending = p;
    return p;
  }

  /** Audiences held now (at most maxEntries). */
  get size(): number {
    return this.#entries.size;
  }

  /** Forgets every token (close: nothing of them stays reachable). */
  clear(): void {
    this.#entries.clear();
  }
}
