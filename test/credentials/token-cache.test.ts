// The cache's timing rules with a hand-driven clock and a mint the test controls.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenCache } from '../../src/credentials/tokens/cache.ts';
import type { Token } from '../../src/credentials/token-types.ts';

function harness(lifetimeMs: number, maxEntries = 256) {
  let now = 1_000_000;
  const minted: string[] = [];
  const failures: string[] = [];
  let fail = false;
  let release: (() => void) | undefined;
  let hold = false;
  const cache = new TokenCache(
    async (aud): Promise<Token> => {
      minted.push(aud);
      if (hold) await new Promise<void>((r) => (release = r));
      if (fail) throw new Error('mint failed');
      return { value: `${aud}#${minted.length}`, expiresAt: now + lifetimeMs };
    },
    { now: () => now, refreshAheadMs: 300_000, minValidityMs: 30_000, maxEntries },
    (aud) => failures.push(aud),
  );
  return {
    cache, minted, failures,
    advance: (ms: number) => void (now += ms),
    set fail(v: boolean) { fail = v; },
    set hold(v: boolean) { hold = v; },
    release: () => release?.(),
  };
}

test('a failed background refresh keeps the current token in use, and is tried again', async () => {
  const h = harness(3600_000);
  const first = await h.cache.get('a');
  h.advance(3600_000 - 200_000); // inside the refresh window
  h.fail = true;
  assert.equal((await h.cache.get('a')).value, first.value);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(h.failures, ['a']);
  h.fail = false;
  assert.equal((await h.cache.get('a')).value, first.value, 'still valid: handed out while a new refresh runs');
  await new Promise((r) => setImmediate(r));
  assert.equal((await h.cache.get('a')).value, 'a#3');
});

test('short lifetimes: the windows shrink with the lifetime (a 60 s token is not refreshed on every get)', async () => {
  const h = harness(60_000);
  await h.cache.get('a');
  h.advance(30_000);
  await h.cache.get('a');
  assert.equal(h.minted.length, 1, 'half its life left: a hit');
  h.advance(16_000); // 14 s left < a quarter of 60 s: background refresh
  await h.cache.get('a');
  assert.equal(h.minted.length, 2);
});

test('an expired token is never handed out: callers wait for the mint in flight, all of them', async () => {
  const h = harness(3600_000);
  await h.cache.get('a');
  h.advance(3600_000);
  h.hold = true;
  const waiting = Promise.all([h.cache.get('a'), h.cache.get('a'), h.cache.get('a')]);
  await new Promise((r) => setImmediate(r));
  h.release();
  const got = await waiting;
  assert.deepEqual(got.map((t) => t.value), ['a#2', 'a#2', 'a#2']);
  assert.equal(h.minted.length, 2);
});

test('at most maxEntries audiences are kept; the least recently used goes', async () => {
  const h = harness(3600_000, 2);
  await h.cache.get('a');
  await h.cache.get('b');
  await h.cache.get('a');
  await h.cache.get('c'); // evicts b
  assert.equal(h.minted.length, 3);
  await h.cache.get('a');
  assert.equal(h.minted.length, 3, 'a was kept');
  await h.cache.get('b');
  assert.equal(h.minted.length, 4, 'b was evicted');
});
