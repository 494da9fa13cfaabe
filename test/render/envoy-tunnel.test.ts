// The tunnel presets (schema validity is in envoy-schema.test.ts): the topology of the "mTLS on
// Cloud Run" demo, and the same wire as tee-init's own tunnel (method, :path, :authority, as
// tee-init's requestHeaders() builds them), mutual TLS inside with files by path, loopback hops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { requestHeaders } from '../../src/proxy/types/tunnel/client.ts';
import { tunnelType } from '../../src/proxy/types/tunnel/type.ts';
import { tunnelServerSchema } from '../../src/config/listeners/tunnel.ts';
import { render } from '../../src/render/index.ts';
import { throwsConfigError } from './assert-config-error.ts';
import { CASES, OUT, SECRETS } from './cases.ts';
import { checkSds } from './envoy-sds.ts';
import { envoyValidator } from './envoy-validator.ts';

type Obj = Record<string, any>;
const bootstrap = (name: string): Obj => parse(render(CASES[name]!).files[0]!.content) as Obj;
const run = (preset: 'envoy-tunnel-client' | 'envoy-tunnel-server', w: Record<string, unknown>) => () => render({ run: { preset, with: w }, secrets: SECRETS, outputDir: OUT });
/** The TLS material of a case, by secret name, from its SDS files (checked like Envoy would). */
const sds = async (name: string) => checkSds(await envoyValidator(), render(CASES[name]!), OUT);
const mtlsFiles = { certificate_chain: { filename: `${OUT}/server.crt` }, private_key: { filename: `${OUT}/server.key` }, watched_directory: { path: OUT } };
const trust = (file: string, dir = OUT) => ({ trusted_ca: { filename: file }, watched_directory: { path: dir } });

test('envoy-tunnel-client: POST with the same :path and :authority as tee-init\'s tunnel client', async () => {
  const b = bootstrap('envoy-tunnel-client');
  const [app, tunnel] = b.static_resources.listeners;
  assert.deepEqual(app.address.socket_address, { address: '127.0.0.1', port_value: 7777 });
  assert.deepEqual(tunnel.address.socket_address, { address: '127.0.0.1', port_value: 15001 }, 'the hop between the listeners stays on loopback');
  const cfg = tunnel.filter_chains[0].filters[0].typed_config.tunneling_config;
  const url = String((CASES['envoy-tunnel-client']!.run.with as Obj).url);
  const ours = requestHeaders(tunnelType.schema.parse({ type: 'tunnel', mode: 'client', listen: '127.0.0.1:0', url }) as never, new URL(url));
  assert.deepEqual(cfg, { hostname: ours[':authority'], use_post: true, post_path: ours[':path'] });
  assert.equal(ours[':method'], 'POST');

  const [inner, server] = b.static_resources.clusters;
  // Mutual TLS inside the tunnel: our certificate, theirs checked against the CA; files by
  // path, through SDS.
  const innerTls = inner.transport_socket.typed_config.common_tls_context;
  assert.deepEqual(innerTls.tls_certificate_sds_secret_configs.map((c: Obj) => c.name), ['cert']);
  assert.equal(innerTls.validation_context_sds_secret_config.name, 'ca');
  const secrets = await sds('envoy-tunnel-client');
  assert.deepEqual(secrets.cert!.tls_certificate, mtlsFiles);
  assert.deepEqual(secrets.ca!.validation_context, trust(`${OUT}/ca.pem`));
  // The front door over TLS: SNI and its certificate's name, HTTP/2; its trust through SDS
  // too, watched in its own directory.
  const outer = server.transport_socket.typed_config;
  assert.equal(outer.sni, 'congrats-server-abc123-uc.a.run.app');
  assert.deepEqual(outer.common_tls_context.alpn_protocols, ['h2']);
  const combined = outer.common_tls_context.combined_validation_context;
  assert.deepEqual(combined.default_validation_context, { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'congrats-server-abc123-uc.a.run.app' } }] });
  assert.equal(combined.validation_context_sds_secret_config.name, 'server_ca');
  assert.deepEqual(secrets.server_ca!.validation_context, trust('/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs'));
  assert.deepEqual(server.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: 'congrats-server-abc123-uc.a.run.app', port_value: 443 });
  assert.ok(server.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http2_protocol_options);
  assert.equal(b.admin, undefined);
  assert.ok(!JSON.stringify(b).includes('inline_'), 'no key material inline');
});

test('envoy-tunnel-client: CONNECT sends host:port as :authority (as tee-init does), serverName checks the inner certificate', () => {
  const b = bootstrap('envoy-tunnel-client-connect');
  const cfg = b.static_resources.listeners[1].filter_chains[0].filters[0].typed_config.tunneling_config;
  const url = 'https://proxy.example.com:8443/';
  const ours = requestHeaders({ method: 'CONNECT', authority: undefined }, new URL(url));
  assert.deepEqual(cfg, { hostname: ours[':authority'] });
  assert.equal(cfg.hostname, 'proxy.example.com:8443');
  const inner = b.static_resources.clusters[0].transport_socket.typed_config;
  assert.equal(inner.sni, 'congrats.internal');
  // The name is checked beside the SDS-delivered CA.
  const combined = inner.common_tls_context.combined_validation_context;
  assert.deepEqual(combined.default_validation_context, { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: 'congrats.internal' } }] });
  assert.equal(combined.validation_context_sds_secret_config.name, 'ca');
  assert.equal(inner.common_tls_context.validation_context_sds_secret_config, undefined);
  assert.deepEqual(b.admin, { address: { socket_address: { address: '127.0.0.1', port_value: 9901 } } });
});

test('envoy-tunnel-server: h2c, POST on the path and CONNECT become tunnels to the inner mTLS listener; anything else 404', async () => {
  const b = bootstrap('envoy-tunnel-server-path');
  const [front, inner] = b.static_resources.listeners;
  assert.deepEqual(front.address.socket_address, { address: '0.0.0.0', port_value: 8443 });
  const hcm = front.filter_chains[0].filters[0].typed_config;
  assert.equal(hcm.codec_type, 'HTTP2');
  assert.equal(hcm.http2_protocol_options.allow_connect, true);
  assert.equal(hcm.http2_protocol_options.max_concurrent_streams, 250);
  const [post, connect, rest] = hcm.route_config.virtual_hosts[0].routes;
  assert.deepEqual(post.match, { path: '/tunnel', headers: [{ name: ':method', string_match: { exact: 'POST' } }] });
  assert.deepEqual(post.route.upgrade_configs, [{ upgrade_type: 'CONNECT', connect_config: { allow_post: true } }]);
  assert.deepEqual(connect.match, { connect_matcher: {} });
  assert.equal(post.route.cluster, 'inner');
  assert.equal(connect.route.cluster, 'inner');
  assert.deepEqual(rest.direct_response, { status: 404 });
  // The inner listener: loopback, client certificate required, checked against the (renamed) CA.
  assert.equal(inner.address.socket_address.address, '127.0.0.1');
  const tls = inner.filter_chains[0].transport_socket.typed_config;
  assert.equal(tls.require_client_certificate, true);
  const secrets = await sds('envoy-tunnel-server-path');
  assert.deepEqual(secrets.cert!.tls_certificate, mtlsFiles);
  assert.deepEqual(secrets.ca!.validation_context, trust(`${OUT}/alice-ca.pem`));
  const clusters = Object.fromEntries(b.static_resources.clusters.map((c: Obj) => [c.name, c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address]));
  assert.deepEqual(clusters, { inner: { address: '127.0.0.1', port_value: 15001 }, backend: { address: '127.0.0.1', port_value: 7777 } });
  // The same path tee-init's own server defaults to.
  const defaults = bootstrap('envoy-tunnel-server').static_resources.listeners[0].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0];
  assert.equal(defaults.match.path, tunnelServerSchema.parse({ type: 'tunnel', mode: 'server', listen: '0.0.0.0:1', connect: '127.0.0.1:2', h2c: true }).path);
});

test('tunnel presets: one clear line per mistake', () => {
  throwsConfigError(run('envoy-tunnel-client', {}), 'run.with.url: expected a non-empty string, got nothing');
  throwsConfigError(run('envoy-tunnel-client', { url: 'http://svc.a.run.app/' }), 'run.with.url "http://svc.a.run.app/": plain http is allowed only to loopback addresses (127.0.0.1, ::1, localhost): use https');
  throwsConfigError(run('envoy-tunnel-client', { url: 'https://u:p@svc.a.run.app/' }), 'run.with.url "https://u:p@svc.a.run.app/": no user, password or #fragment in a tunnel URL');
  throwsConfigError(run('envoy-tunnel-client', { url: 'https://svc.a.run.app/', method: 'GET' }), 'run.with.method: expected one of POST, CONNECT, got "GET"');
  throwsConfigError(run('envoy-tunnel-client', { url: 'https://svc.a.run.app/', innerPort: 7777 }), 'run.with.innerPort: 7777 is also run.with.listenPort (envoy-tunnel-client)');
  throwsConfigError(run('envoy-tunnel-client', { url: 'https://svc.a.run.app/', serverCa: 'ca.pem' }), 'run.with.serverCa: expected an absolute file path like /etc/ssl/certs/ca-certificates.crt, got "ca.pem"');
  throwsConfigError(run('envoy-tunnel-server', {}), 'run.with.backendPort: expected a port number 1-65535, got nothing');
  throwsConfigError(run('envoy-tunnel-server', { backendPort: 8080 }), 'run.with.backendPort: 8080 is also run.with.listenPort (envoy-tunnel-server)');
  throwsConfigError(run('envoy-tunnel-server', { backendPort: 7777, path: 'tunnel' }), 'run.with.path: expected an absolute path like /, got "tunnel"');
  throwsConfigError(run('envoy-tunnel-server', { backendPort: 7777, sni: 'x' }), /run\.with\.sni: not a parameter of the envoy-tunnel-server preset/);
});

test('envoy-tunnel-client: serverCa is read through SDS, watched in its own directory; plain h2c to loopback has no outer trust', async () => {
  const v = await envoyValidator();
  const withCa = render({ run: { preset: 'envoy-tunnel-client', with: { url: 'https://svc.a.run.app/', serverCa: `${OUT}/front-door-ca.pem` } }, secrets: SECRETS, outputDir: OUT });
  assert.deepEqual(checkSds(v, withCa, OUT).server_ca!.validation_context, trust(`${OUT}/front-door-ca.pem`));
  const h2c = render({ run: { preset: 'envoy-tunnel-client', with: { url: 'http://127.0.0.1:8080/' } }, secrets: SECRETS, outputDir: OUT });
  assert.deepEqual(h2c.files.map((f) => f.name), ['envoy.yaml', 'envoy-sds-cert.yaml', 'envoy-sds-ca.yaml']);
  assert.deepEqual(Object.keys(checkSds(v, h2c, OUT)).sort(), ['ca', 'cert']);
  assert.equal(h2c.reload, 'none');
});
