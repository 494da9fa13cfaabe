// Envoy v3 bootstrap fragments for the envoy-tunnel-client and envoy-tunnel-server presets: the
// "mTLS on Cloud Run" topology (reference traffic.md §1) in one Envoy per side, with the same
// wire format as tee-init's own `type: tunnel` listeners (POST on a path, or CONNECT; one HTTP/2
// stream per TCP connection; mutual TLS inside the stream). Data only, filled and put together
// by src/render/presets/envoy-tunnel.ts. Shared pieces (admin, the mutual-TLS server context,
// the backend cluster) come from templates/envoy.ts.
//
// Client side:  program ─plain─▶ [app listener] ─mTLS (client cert)─▶ [tunnel listener, loopback
//               innerPort] ─HTTP/2 POST|CONNECT over TLS (SNI = host)─▶ tunnel server
// Server side:  front door ─h2c─▶ [tunnel listener] ─stream payload─▶ [inner listener, loopback
//               innerPort: mTLS, client cert required] ─plain─▶ program (backendPort)
//
// Placeholders: {{with.*}} (the preset's parameters), {{tls.ca}}, {{tls.cert}}, {{tls.key}},
// {{tunnel.host}}, {{tunnel.port}}, {{tunnel.hostname}} (:authority), {{tunnel.path}},
// {{tunnel.serverCa}} (the outer TLS trust file) and {{tunnel.serverCaDir}} (its directory),
// {{envoy.sds.*}} (the SDS files' paths). Every certificate, key and CA is read through SDS
// from files (see templates/envoy.ts), the outer trust too: a rotation reaches Envoy by itself.
import { certificateSds, sdsFile, sdsSource, trustSds } from './envoy.ts';

/** The client's extra SDS file: the trust for the front door's certificate. */
export const serverTrustFile = 'envoy-sds-server-ca.yaml';

const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3';
const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

const stdoutAccessLog = [
  { name: 'envoy.access_loggers.stdout', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' } },
];

const loopback = (name: string, port: string) => ({
  name,
  address: { socket_address: { address: '127.0.0.1', port_value: port } },
  per_connection_buffer_limit_bytes: 32768,
});

// ---- client side ------------------------------------------------------------------------------

/** Where the program connects (plain TCP). */
export const clientAppListener = {
  name: 'app',
  address: { socket_address: { address: '{{with.listenAddress}}', port_value: '{{with.listenPort}}' } },
  per_connection_buffer_limit_bytes: 32768,
  filter_chains: [{
    filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: { '@type': TCP_PROXY, stat_prefix: 'app', cluster: 'inner_tls', access_log: stdoutAccessLog } }],
  }],
};

/** The mutual-TLS hop: this side's client certificate, the other side's checked against the CA. */
export const clientInnerCluster = {
  name: 'inner_tls',
  type: 'STATIC',
  connect_timeout: '5s',
  load_assignment: { cluster_name: 'inner_tls', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: '{{with.innerPort}}' } } } }] }] },
  transport_socket: {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': `${TLS}.UpstreamTlsContext`,
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        tls_certificate_sds_secret_configs: [certificateSds],
        // with.serverName adds SNI here and a SAN check beside the CA (after filling: user data).
        validation_context_sds_secret_config: trustSds,
      },
    },
  },
};

/** Loopback listener that puts each (already mutual-TLS) connection into one HTTP/2 stream. */
export const clientTunnelListener = {
  ...loopback('tunnel', '{{with.innerPort}}'),
  filter_chains: [{
    filters: [{
      name: 'envoy.filters.network.tcp_proxy',
      typed_config: {
        '@type': TCP_PROXY,
        stat_prefix: 'tunnel',
        cluster: 'tunnel_server',
        access_log: stdoutAccessLog,
        // use_post/post_path are added for method POST (Cloud Run has no CONNECT).
        tunneling_config: { hostname: '{{tunnel.hostname}}' },
      },
    }],
  }],
};

/** The tunnel server (Cloud Run's front door): HTTP/2 over TLS, SNI and certificate checked. */
export const clientTunnelCluster = {
  name: 'tunnel_server',
  type: 'LOGICAL_DNS',
  dns_lookup_family: 'V4_PREFERRED',
  connect_timeout: '10s',
  load_assignment: { cluster_name: 'tunnel_server', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '{{tunnel.host}}', port_value: '{{tunnel.port}}' } } } }] }] },
  typed_extension_protocol_options: {
    [HTTP_OPTIONS]: { '@type': `type.googleapis.com/${HTTP_OPTIONS}`, explicit_http_config: { http2_protocol_options: {} } },
  },
};

/** Added to clientTunnelCluster for an https URL. */
export const clientTunnelTls = {
  name: 'envoy.transport_sockets.tls',
  typed_config: {
    '@type': `${TLS}.UpstreamTlsContext`,
    sni: '{{tunnel.host}}',
    common_tls_context: {
      alpn_protocols: ['h2'],
      // The name is policy (in the bootstrap); the trust is material (SDS, re-read on a change).
      combined_validation_context: {
        default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: '{{tunnel.host}}' } }] },
        validation_context_sds_secret_config: { name: 'server_ca', sds_config: sdsSource('{{envoy.sds.serverCa}}') },
      },
    },
  },
};

/** envoy-sds-server-ca.yaml (https URLs): with.serverCa, watched in its own directory. */
export const serverTrustSecret = sdsFile({
  name: 'server_ca',
  validation_context: { trusted_ca: { filename: '{{tunnel.serverCa}}' }, watched_directory: { path: '{{tunnel.serverCaDir}}' } },
});

// ---- server side ------------------------------------------------------------------------------

/** What the front door delivers: HTTP/2 cleartext; POST on the path and CONNECT become tunnels. */
export const serverTunnelListener = {
  name: 'tunnel',
  address: { socket_address: { address: '{{with.listenAddress}}', port_value: '{{with.listenPort}}' } },
  per_connection_buffer_limit_bytes: 32768,
  filter_chains: [{
    filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': HCM,
        stat_prefix: 'tunnel',
        codec_type: 'HTTP2',
        access_log: stdoutAccessLog,
        http2_protocol_options: { allow_connect: true, max_concurrent_streams: '{{with.maxStreams}}' },
        upgrade_configs: [{ upgrade_type: 'CONNECT' }],
        // A tunnel lives as long as its TCP connection (Cloud Run caps a request at 60 min).
        stream_idle_timeout: '3600s',
        common_http_protocol_options: { headers_with_underscores_action: 'REJECT_REQUEST' },
        route_config: {
          name: 'tunnel',
          virtual_hosts: [{
            name: 'tunnel',
            domains: ['*'],
            routes: [
              {
                match: { path: '{{tunnel.path}}', headers: [{ name: ':method', string_match: { exact: 'POST' } }] },
                route: { cluster: 'inner', timeout: '0s', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: { allow_post: true } }] },
              },
              {
                match: { connect_matcher: {} },
                route: { cluster: 'inner', timeout: '0s', upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }] },
              },
              // Anything else is not a tunnel.
              { match: { prefix: '/' }, direct_response: { status: 404 } },
            ],
          }],
        },
        http_filters: [
          { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
        ],
      },
    }],
  }],
};

/** The stream payload (the client's mutual TLS) to the inner listener. */
export const serverInnerCluster = {
  name: 'inner',
  type: 'STATIC',
  connect_timeout: '5s',
  load_assignment: { cluster_name: 'inner', endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: '{{with.innerPort}}' } } } }] }] },
};

/** Loopback listener terminating the inner mutual TLS (transport socket: templates/envoy.ts downstreamTls). */
export const serverInnerListener = {
  ...loopback('inner', '{{with.innerPort}}'),
};

export const serverInnerProxy = {
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: { '@type': TCP_PROXY, stat_prefix: 'inner', cluster: 'backend', access_log: stdoutAccessLog },
};
