// Listeners that send tokens (metadata, http-proxy, tunnel client) run in worker threads too:
// their tokens are asked of the init's thread by message (one cache, one mint in flight, there),
// account facts and the immediate refusals of tokens.source() are the same as in the init's thread.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Token, TokenConfig, TokenSources } from '../../src/credentials/token-types.ts';
import { metadataSchema } from '../../src/config/listeners/metadata.ts';
import { metadataType } from '../../src/proxy/types/metadata/type.ts';
import { startInWorkers } from '../../src/proxy/workers.ts';
import { memoryLog } from '../helpers/log.ts';

test('metadata in a worker thread: tokens from the init\'s thread, by request id; account facts; no ID token without a service account', async (t) => {
  const asked: { config: TokenConfig; audience: string | undefined }[] = [];
  let n = 0;
  const tokens: TokenSources = {
    source(config) {
      if (config.kind === 'id-token' && config.credentials === 'bob') throw new Error('credentials bob have no service account: no ID tokens');
      return {
        async get(audience?: string): Promise<Token> {
          asked.push({ config, audience });
          // Answers in reverse order of asking would be crossed without ids: make them race.
          const i = ++n;
          await new Promise((r) => setTimeout(r, i % 2 ? 50 : 0));
          return { value: `token-${audience ?? config.scopes?.join(',')}`, expiresAt: Date.now() + 3_600_000 };
        },
      };
    },
    account: (name) => (name === 'alice' ? { email: 'alice@alice-proj.iam.gserviceaccount.com', projectId: 'alice-proj' } : name === 'bob' ? {} : undefined),
  };
  const config = metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'alice' });
  const handle = await startInWorkers({ name: 'md', field: 'listeners.md', config, type: metadataType, count: 1, secret: () => Buffer.alloc(0), tokens, log: memoryLog('warn').log, logLine: () => {} });
  t.after(() => handle.close());
  const base = `http://127.0.0.1:${handle.address.port}/computeMetadata/v1/instance/service-accounts/default`;
  const get = (path: string) => fetch(`${base}${path}`, { headers: { 'Metadata-Flavor': 'Google' } });

  assert.equal(await (await get('/email')).text(), 'alice@alice-proj.iam.gserviceaccount.com');
  // Four ID tokens for four audiences, asked at once and answered out of order: each request
  // gets its own (the ids correlate them).
  const answers = await Promise.all(['a', 'b', 'c', 'd'].map(async (aud) => {
    const r = await get(`/identity?audience=https://${aud}.example`);
    assert.equal(r.status, 200);
    return r.text();
  }));
  assert.deepEqual(answers, ['a', 'b', 'c', 'd'].map((aud) => `token-https://${aud}.example`));
  assert.equal(asked.length, 4);
  // As in the init's thread: a credential that cannot mint ID tokens has no /identity.
  const bobConfig = metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'bob' });
  const bob = await startInWorkers({ name: 'md2', field: 'listeners.md2', config: bobConfig, type: metadataType, count: 1, secret: () => Buffer.alloc(0), tokens, log: memoryLog('warn').log, logLine: () => {} });
  t.after(() => bob.close());
  const r = await fetch(`http://127.0.0.1:${bob.address.port}/computeMetadata/v1/instance/service-accounts/default/identity?audience=https://x.example`, { headers: { 'Metadata-Flavor': 'Google' } });
  assert.equal(r.status, 404);
});
