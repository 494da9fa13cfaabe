// examples/egress-id-token: the config parses (its listeners with their types' schemas until the
// lead merges `listeners:` into the config schema), and every token it asks for can be minted
// with the credentials it configures.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { configSchema } from '../../src/config/schema.ts';
import { tokenConfigProblem } from '../../src/credentials/tokens/index.ts';
import { httpProxyEnv, httpProxySchema } from '../../src/config/listeners/http-proxy.ts';
import { metadataEnv, metadataSchema } from '../../src/config/listeners/metadata.ts';
import { httpProxyType } from '../../src/proxy/types/http-proxy/type.ts';
import { metadataType } from '../../src/proxy/types/metadata/type.ts';

test('examples/egress-id-token: config, listeners and tokens are valid', () => {
  const raw = parse(readFileSync(new URL('../../examples/egress-id-token/tee-init.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
  const { listeners, ...rest } = raw as { listeners: Record<string, { type: string }> };
  const config = configSchema.parse(rest);
  const egress = httpProxySchema.parse(listeners.egress);
  const metadata = metadataSchema.parse(listeners.metadata);
  for (const r of egress.routes) if (r.token) assert.equal(tokenConfigProblem(r.token, config.credentials), undefined, JSON.stringify(r.token));
  for (const name of [...httpProxyType.credentials(egress), ...metadataType.credentials(metadata)]) assert.ok(config.credentials[name], name);
  assert.deepEqual(httpProxyType.secrets(egress), []);
  assert.equal(httpProxyEnv(egress, { host: '127.0.0.1', port: 8000 }).HTTP_PROXY, 'http://127.0.0.1:8000');
  assert.equal(metadataEnv(metadata, { host: '127.0.0.1', port: 8999 }).GCE_METADATA_HOST, '127.0.0.1:8999');
});
