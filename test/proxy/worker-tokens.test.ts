// Listeners that send tokens (metadata, http-proxy, tunnel client) run in worker threads too:
// their tokens are asked of the init's thread by message (one cache, one mint in flight, there),
// account facts and the immediate refusals of tokens.source() are the same as in the init's thread.
// A worker thread keeps the tokens it was given while more than 5 minutes are left (no message per request).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Token, TokenConfig, TokenSources } from '../../src/credentials/token-types.ts';
import { metadataSchema } from '../../src/config/listeners/metadata.ts';
import { metadataType } from '../../src/proxy/types/metadata/type.ts';
import { httpProxySchema } from '../../src/config/listeners/http-proxy.ts';
import { httpProxyType } from '../../src/proxy/types/http-proxy/type.ts';
import { startInWorkers } from '../../src/proxy/workers.ts';
import { memoryLog } from '../helpers/log.ts';
import { createPki } from '../helpers/pki.ts';

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

test('http-proxy in a worker thread: a token is asked of the init\'s thread once and kept while far from its end, not once per request; one near its end is asked for again each time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-worker-tokens-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = createPki(dir, { serverSans: ['DNS:svc.example', 'DNS:old.example'] });
  const seen: (string | undefined)[] = [];
  const service = createHttpsServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) }, (req, res) => {
    seen.push(req.headers.authorization);
    res.end('ok');
  });
  service.listen(0, '127.0.0.1');
  await once(service, 'listening');
  t.after(() => service.close());
  const servicePort = (service.address() as AddressInfo).port;
  const asked: (string | undefined)[] = [];
  const tokens: TokenSources = {
    source: () => ({
      async get(audience?: string): Promise<Token> {
        asked.push(audience);
        // old.example's token has 2 minutes left: the init's thread (which refreshes ahead) is asked each time.
        return { value: `token-${asked.length}`, expiresAt: Date.now() + (audience?.includes('old') ? 120_000 : 3_600_000) };
      },
    }),
  };
  const config = httpProxySchema.parse({
    type: 'http-proxy', listen: '127.0.0.1:0',
    routes: [{ hosts: ['svc.example', 'old.example'], ca: 'ca', address: `127.0.0.1:${servicePort}`, token: { kind: 'id-token', credentials: 'alice' } }],
  });
  const ca = readFileSync(pki.ca.cert);
  const handle = await startInWorkers({ name: 'egress', field: 'listeners.egress', config, type: httpProxyType, count: 1, secret: (name) => (name === 'ca' ? ca : Buffer.alloc(0)), tokens, log: memoryLog('warn').log, logLine: () => {} });
  t.after(() => handle.close());
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (host: string) => new Promise<number>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: handle.address.port, path: `http://${host}/`, agent }, (res) => res.resume().on('end', () => resolve(res.statusCode!))).on('error', reject).end();
  });
  for (let i = 0; i < 5; i++) assert.equal(await get('svc.example'), 200);
  assert.deepEqual(asked, ['https://svc.example']);
  assert.deepEqual(seen, Array(5).fill('Bearer token-1'));
  for (let i = 0; i < 3; i++) assert.equal(await get('old.example'), 200);
  assert.deepEqual(asked, ['https://svc.example', 'https://old.example', 'https://old.example', 'https://old.example']);
  assert.deepEqual(seen.slice(5), ['Bearer token-2', 'Bearer token-3', 'Bearer token-4']);
});

test('metadata in a worker thread keeps the tokens it was given too: the same audience twice is one message to the init\'s thread', async (t) => {
  let asked = 0;
  const tokens: TokenSources = {
    source: () => ({ get: async (audience?: string) => (asked++, { value: `token-${audience}-${asked}`, expiresAt: Date.now() + 3_600_000 }) }),
    account: () => ({ email: 'alice@alice-proj.iam.gserviceaccount.com', projectId: 'alice-proj' }),
  };
  const config = metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'alice' });
  const handle = await startInWorkers({ name: 'md', field: 'listeners.md', config, type: metadataType, count: 1, secret: () => Buffer.alloc(0), tokens, log: memoryLog('warn').log, logLine: () => {} });
  t.after(() => handle.close());
  const get = () => fetch(`http://127.0.0.1:${handle.address.port}/computeMetadata/v1/instance/service-accounts/default/identity?audience=https://a.example`, { headers: { 'Metadata-Flavor': 'Google' } }).then((r) => r.text());
  assert.equal(await get(), 'token-https://a.example-1');
  assert.equal(await get(), 'token-https://a.example-1');
  assert.equal(asked, 1);
});
