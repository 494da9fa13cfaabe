// Tokens in a listener worker thread (./worker.ts): each get() of a source there is a message
// to the init's thread and back (two thread hops; on the egress proxy, most of its added latency
// on a token route: +0.08–0.12 ms p50). So the thread keeps what it was given while more than
// 5 minutes of it are left (the init's cache refreshes ahead from there: tokens/cache.ts); nearer
// its end every get() asks the init's thread again, which decides as before. Minting, its retries
// and its single flight stay there. Every type that sends tokens (http-proxy, metadata, the
// tunnel client) gets this through the worker's tokens.source(); a reload makes new sources.
import type { Token, TokenSource } from '../credentials/token-types.ts';
import { DEFAULT_TIMING } from '../credentials/tokens/cache.ts';

export function heldTokens(source: TokenSource, now: () => number = Date.now): TokenSource {
  const held = new Map<string, Token>();
  const fresh = (t: Token) => t.expiresAt - now() > DEFAULT_TIMING.refreshAheadMs;
  return {
    get(audience) {
      const key = audience ?? '';
      const token = held.get(key);
      if (token && fresh(token)) return Promise.resolve(token);
      return source.get(audience).then((t) => {
        held.delete(key);
        if (fresh(t)) {
          held.set(key, t);
          // As many audiences as the init's cache keeps; the oldest goes first.
          if (held.size > DEFAULT_TIMING.maxEntries) held.delete(held.keys().next().value!);
        }
        return t;
      });
    },
  };
}
