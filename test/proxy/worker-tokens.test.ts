// Listeners that send tokens (metadata, http-proxy, tunnel client) run in worker threads too:
// their tokens are asked of the init's thread by message (one cache, one mint in flight, there),
// account facts and the immediate refusals of tokens.source() are the same as in the init's thread.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Token, TokenConfig, TokenSources } from '../../src/credentials/token-types.ts';
import { metadataSchema, metadataType } from '../../src/proxy/types/metadata.ts';
import { startInWorkers } from '../../src/proxy/workers.ts';
import { memoryLog } from '../helpers/log.ts';

test('metadata in a worker thread: tokens from the init\'s thread, by request id; account facts; no ID token without a service account', async (t) => {
  const asked: { config: TokenConfig; audience: string | undefined }[] = [];
  let n = 0;
  const tokens: TokenSources = {
    source(config) {
      if (config.kind === 'id-token') throw new Error('credentials alice have no service account: no ID tokens');
      return {
        async get(audience?: string): Promise<Token> {
          asked.push({ config, audience });
          // Answers in reverse order of asking would be crossed without ids: make them race.
          const i = ++n;
          await new Promise((r) => setTimeout(r, i % 2 ? 50 : 0));
          return { value: `token-${config.scopes?.join(',')}`, expiresAt: Date.now() + 3_600_000 };
        },
      };
    },
    account: (name) => (name === 'alice' ? { email: 'alice@alice-proj.iam.gserviceaccount.com', projectId: 'alice-proj' } : undefined),
  };
  const config = metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'alice' });
  const handle = await startInWorkers({ name: 'md', field: 'listeners.md', config, type: metadataType, count: 1, secret: () => Buffer.alloc(0), tokens, log: memoryLog('warn').log, logLine: () => {} });
  t.after(() => handle.close());
  const base = `http://127.0.0.1:${handle.address.port}/computeMetadata/v1/instance/service-accounts/default`;
  const get = (path: string) => fetch(`${base}${path}`, { headers: { 'Metadata-Flavor': 'Google' } });

  assert.equal(await (await get('/email')).text(), 'alice@alice-proj.iam.gserviceaccount.com');
  const answers = await Promise.all(['a', 'b', 'c', 'd'].map(async (scope) => {
    const r = await get(`/token?scopes=${scope}`);
    assert.equal(r.status, 200);
    return ((await r.json()) as { access_token: string }).access_token;
  }));
  assert.deepEqual(answers, ['token-a', 'token-b', 'token-c', 'token-d']);
  assert.equal(asked.length, 4);
  // As in the init's thread: the credential cannot mint ID tokens, so /identity is not there.
  assert.equal((await get('/identity?audience=https://x.example')).status, 404);
});
