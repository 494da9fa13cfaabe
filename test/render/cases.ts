// Fixed render inputs shared by the golden-file and Envoy schema tests.
import type { RenderInput } from '../../src/render/index.ts';

export const OUT = '/run/tee-init';

/** What materialize would hand over for a typical config: three TLS files and a PSK share. */
export const SECRETS: RenderInput['secrets'] = {
  ca: { path: `${OUT}/ca.pem` },
  cert: { path: `${OUT}/server.crt` },
  key: { path: `${OUT}/server.key` },
  alice_ca: { path: `${OUT}/alice-ca.pem` },
  token: { path: `${OUT}/token` },
  share_a: {},
};

const input = (run: RenderInput['run']): RenderInput => ({ run, secrets: SECRETS, outputDir: OUT });

export const CASES: Record<string, RenderInput> = {
  'redis-defaults': input({ preset: 'redis' }),
  'postgres-defaults': input({ preset: 'postgres' }),
  'postgres-custom': input({ preset: 'postgres', with: { port: 15432, listenAddresses: ['127.0.0.1', '::1'], dataDir: '{{output.dir}}/db', ca: 'alice_ca', args: ['-c', 'max_connections=20'] } }),
  'redis-custom': input({
    preset: 'redis',
    with: { tlsPort: 16379, ca: 'alice_ca', bind: ['0.0.0.0', '::'], args: ['--maxmemory', '256mb', '--maxmemory-policy', 'allkeys-lru'] },
    env: { REDIS_CA: '{{secrets.alice_ca.path}}' },
  }),
  'envoy-http-direct': input({ preset: 'envoy-http' }),
  'envoy-http-backend': input({ preset: 'envoy-http', with: { listenPort: 443, backendPort: 8080 } }),
  'envoy-http-admin-san': input({
    preset: 'envoy-http',
    with: {
      listenAddress: '::',
      backendPort: '8080',
      adminPort: 9901,
      logLevel: 'warning',
      sanMatch: [
        { type: 'URI', exact: 'spiffe://alice.example/client' },
        { type: 'DNS', suffix: '.clients.bob.example' },
      ],
      args: ['--concurrency', '2'],
    },
  }),
  'envoy-network': input({ preset: 'envoy-network', with: { listenPort: 6380, backendPort: 6379 } }),
  'envoy-network-admin-san': input({
    preset: 'envoy-network',
    with: { backendPort: 5432, adminPort: 9901, sanMatch: [{ type: 'EMAIL', exact: 'db-client@alice.example' }], cert: 'cert', key: 'key' },
  }),
  'envoy-tunnel-client': input({ preset: 'envoy-tunnel-client', with: { url: 'https://congrats-server-abc123-uc.a.run.app/' } }),
  'envoy-tunnel-client-connect': input({
    preset: 'envoy-tunnel-client',
    with: { url: 'https://proxy.example.com:8443/', method: 'CONNECT', listenPort: 9000, innerPort: 9001, serverName: 'congrats.internal', adminPort: 9901, logLevel: 'debug' },
  }),
  'envoy-tunnel-server': input({ preset: 'envoy-tunnel-server', with: { backendPort: 7777 } }),
  'envoy-tunnel-server-path': input({ preset: 'envoy-tunnel-server', with: { backendPort: '7777', path: '/tunnel', listenPort: 8443, maxStreams: 250, adminPort: 9901, ca: 'alice_ca' } }),
  none: input({
    preset: 'none',
    with: { port: 8443, greeting: 'hello', upstreams: ['a:1', 'b:2'] },
    command: ['/usr/bin/my-server', '--listen=0.0.0.0:{{with.port}}', '--tls-cert', '{{secrets.cert.path}}', '--config', '{{output.dir}}/app.yaml'],
    env: { TLS_KEY_FILE: '{{secrets.key.path}}', GREETING: '{{ with.greeting }}, world', PORT: '{{with.port}}' },
    files: [
      { name: 'app.yaml', template: { listen: { port: '{{with.port}}' }, tls: { ca: '{{secrets.ca.path}}' }, upstreams: '{{with.upstreams}}', greeting: '{{with.greeting}} from {{output.dir}}' } },
      { name: 'app.json', template: { port: '{{with.port}}', token_file: '{{secrets.token.path}}' }, mode: '0440' },
      { name: 'app.conf', template: 'port {{with.port}}\ncert {{secrets.cert.path}}\n' },
    ],
  }),
};

export const ENVOY_CASES = Object.keys(CASES).filter((k) => k.startsWith('envoy-'));
/** The tunnel presets: two listeners each, checked by test/render/envoy-tunnel.test.ts. */
export const ENVOY_TUNNEL_CASES = ENVOY_CASES.filter((k) => k.startsWith('envoy-tunnel-'));
