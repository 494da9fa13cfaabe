// The Envoy validator itself: it is whole inside the project (protos from @grpc/grpc-js-xds),
// it knows every type the presets emit or will emit (the tunnel presets: CONNECT upgrades,
// upstream HTTP/2 with allow_connect, tcp_proxy tunneling, SDS from a watched directory), and
// it stays strict (unknown fields, @type resolution, Envoy's retired v2 API, PGV rules).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { envoyValidator, repoRoot } from './envoy-validator.ts';

type Obj = Record<string, unknown>;
const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

// SDS from files: a secret re-read when the directory's ..data link is swapped (rotation).
const sds = (name: string) => ({
  name,
  sds_config: { path_config_source: { path: `/run/tee-init/sds/${name}.yaml`, watched_directory: { path: '/run/tee-init/sds' } } },
});

/** A bootstrap with what the tunnel presets need: HTTP CONNECT terminated by Envoy (HCM
 *  upgrade_configs + route connect_config), an upstream cluster speaking HTTP/2 with
 *  allow_connect, tcp_proxy tunnelling over CONNECT/POST, and TLS contexts from SDS files. */
function tunnelBootstrap(): Obj {
  return {
    static_resources: {
      listeners: [
        {
          name: 'tunnel-in',
          address: { socket_address: { address: '0.0.0.0', port_value: 8080 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    stat_prefix: 'tunnel_in',
                    codec_type: 'HTTP2',
                    http2_protocol_options: { allow_connect: true },
                    upgrade_configs: [{ upgrade_type: 'CONNECT' }, { upgrade_type: 'websocket', enabled: false }],
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'tunnel',
                          domains: ['*'],
                          routes: [
                            { match: { connect_matcher: {} }, route: { cluster: 'backend', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: { allow_post: true } }] } },
                          ],
                        },
                      ],
                    },
                    http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                  },
                },
              ],
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': `${TLS}.DownstreamTlsContext`,
                  require_client_certificate: true,
                  common_tls_context: { tls_certificate_sds_secret_configs: [sds('server')], validation_context_sds_secret_config: sds('ca') },
                },
              },
            },
          ],
        },
        {
          name: 'tunnel-out',
          address: { socket_address: { address: '127.0.0.1', port_value: 7777 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.tcp_proxy',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                    stat_prefix: 'tunnel_out',
                    cluster: 'cloud_run',
                    tunneling_config: {
                      hostname: 'svc-abc.a.run.app:443',
                      use_post: true,
                      post_path: '/tunnel',
                      headers_to_add: [{ header: { key: 'authorization', value: 'Bearer %DYNAMIC_METADATA(tee:token)%' } }],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'cloud_run',
          type: 'LOGICAL_DNS',
          connect_timeout: '5s',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: { allow_connect: true, max_concurrent_streams: 100 } },
            },
          },
          load_assignment: {
            cluster_name: 'cloud_run',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'svc-abc.a.run.app', port_value: 443 } } } }] }],
          },
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: { '@type': `${TLS}.UpstreamTlsContext`, sni: 'svc-abc.a.run.app', common_tls_context: { alpn_protocols: ['h2'], validation_context_sds_secret_config: sds('roots') } },
          },
        },
        {
          name: 'backend',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'backend',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 7000 } } } }] }],
          },
        },
      ],
    },
  };
}

const clone = <T>(x: T): T => structuredClone(x);
const dig = (o: Obj, ...path: (string | number)[]): Obj => path.reduce<any>((x, k) => x[k], o);

test('envoy validator: the tunnel presets\' types are all known, and a full tunnel bootstrap is valid', async () => {
  const v = await envoyValidator();
  const res = v.validate(tunnelBootstrap(), undefined, { canonical: true });
  assert.deepEqual(res.errors, []);
  assert.deepEqual(res.warnings, []);
});

test('envoy validator: an SDS file (a DiscoveryResponse of Secrets) validates as such', async () => {
  const v = await envoyValidator();
  const text = `resources:
- "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret
  name: server
  tls_certificate:
    certificate_chain: { filename: /run/tee-init/server.crt }
    private_key: { filename: /run/tee-init/server.key }
`;
  const res = v.validate(v.parseText(text, 'sds.yaml'), 'envoy.service.discovery.v3.DiscoveryResponse', { canonical: true });
  assert.deepEqual(res.errors, []);
});

// Each mutation of the valid tunnel bootstrap must produce an error at the named path.
const BROKEN: [string, (b: Obj) => void, RegExp][] = [
  ['unknown field in a typed_config', (b) => { dig(b, 'static_resources', 'listeners', 1, 'filter_chains', 0, 'filters', 0, 'typed_config', 'tunneling_config').use_pots = true; }, /unknown field "use_pots".*did you mean "use_post"/],
  ['unknown @type', (b) => { dig(b, 'static_resources', 'clusters', 0, 'typed_extension_protocol_options', 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions')['@type'] = 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOption'; }, /unknown type/],
  ['Envoy\'s retired v2 API', (b) => { dig(b, 'static_resources', 'listeners', 0, 'filter_chains', 0, 'filters', 0, 'typed_config', 'http_filters', 0, 'typed_config')['@type'] = 'type.googleapis.com/envoy.config.filter.http.router.v2.Router'; }, /unknown type/],
  ['PGV: tunneling hostname min_len', (b) => { dig(b, 'static_resources', 'listeners', 1, 'filter_chains', 0, 'filters', 0, 'typed_config', 'tunneling_config').hostname = ''; }, /hostname.*at least 1/],
  ['PGV: SDS secret name required', (b) => { dig(b, 'static_resources', 'listeners', 0, 'filter_chains', 0, 'transport_socket', 'typed_config', 'common_tls_context', 'validation_context_sds_secret_config').name = ''; }, /name/],
  ['PGV: port range', (b) => { dig(b, 'static_resources', 'listeners', 0, 'address', 'socket_address').port_value = 65536; }, /port_value.*65535/],
  ['enum by name', (b) => { dig(b, 'static_resources', 'listeners', 0, 'filter_chains', 0, 'filters', 0, 'typed_config').codec_type = 'HTTP4'; }, /HTTP4/],
  ['oneof given twice', (b) => { dig(b, 'static_resources', 'listeners', 1, 'filter_chains', 0, 'filters', 0, 'typed_config').weighted_clusters = { clusters: [{ name: 'x', weight: 1 }] }; }, /oneof|cluster_specifier|only one/],
];
for (const [what, mutate, expected] of BROKEN) {
  test(`envoy validator rejects: ${what}`, async () => {
    const v = await envoyValidator();
    const b = clone(tunnelBootstrap());
    mutate(b);
    const { errors } = v.validate(b, undefined, { canonical: true });
    assert.ok(errors.some((e) => expected.test(`${e.path}: ${e.message}`)), `${expected} not in ${JSON.stringify(errors, null, 1)}`);
  });
}

test('envoy validator: only third-party tracing/metrics protos the package leaves out are skipped', async () => {
  const v = await envoyValidator();
  assert.ok(v.files.length > 300, `only ${v.files.length} protos loaded`);
  assert.ok(v.files.includes('envoy/config/bootstrap/v3/bootstrap.proto'));
  for (const s of v.skipped) assert.match(s.missing, /^(opencensus|opentelemetry|io\/prometheus)\//, `${s.file} is not loaded: ${s.missing} is missing`);
  for (const f of v.files) assert.doesNotMatch(f, /^envoy\/.*\/v2(alpha\d*)?\//, `${f}: Envoy's v2 API is retired`);
});

test('the project is whole: no file refers to anything beside the clone', () => {
  // git grep: tracked files only (node_modules and .cache are not tracked); exit 1 = no match.
  const r = spawnSync('git', ['grep', '-l', '-E', String.raw`\.\./shared|/work/shared`, '--', ':!test/render/envoy-validator.test.ts'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 1, `these files refer outside the repository:\n${r.stdout}${r.stderr}`);
});

test('envoy validator: the package providing the protos is a devDependency (not in the bundle)', () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { devDependencies: Obj; dependencies: Obj };
  assert.ok(pkg.devDependencies['@grpc/grpc-js-xds']);
  assert.equal(pkg.dependencies['@grpc/grpc-js-xds'], undefined);
});
