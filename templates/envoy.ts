// Envoy v3 bootstrap fragments for the envoy-http and envoy-network presets, as data.
// src/render/presets/envoy.ts fills each fragment's placeholders at the data level, puts them
// together and serializes the result as YAML (envoy.yaml in the output directory). Data only.
//
// Placeholders: {{with.listenAddress}} (default 0.0.0.0), {{with.listenPort}} (default 8443),
// {{with.backendPort}}, {{with.adminPort}}, {{with.logLevel}} (default info), {{tls.ca}},
// {{tls.cert}}, {{tls.key}} (paths: certificates are referenced by file, never inlined),
// {{envoy.config}} (the rendered bootstrap's path).
// Limits follow Envoy's "Configuring Envoy as an edge proxy" best practices.

export const configFile = 'envoy.yaml';

export const argv = [
  'envoy',
  '-c', '{{envoy.config}}',
  // tee-init is the supervisor: no hot-restart shared memory, no parent/child Envoy handover.
  '--disable-hot-restart',
  '--log-level', '{{with.logLevel}}',
];

const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3';

/** Present only when with.adminPort is set; the admin interface never leaves loopback. */
export const admin = {
  address: { socket_address: { address: '127.0.0.1', port_value: '{{with.adminPort}}' } },
};

export const listener = {
  name: 'tls',
  address: { socket_address: { address: '{{with.listenAddress}}', port_value: '{{with.listenPort}}' } },
  per_connection_buffer_limit_bytes: 32768,
};

/** The listener's TLS: a server certificate, and client certificates required and checked. */
export const downstreamTls = {
  name: 'envoy.transport_sockets.tls',
  typed_config: {
    '@type': `${TLS}.DownstreamTlsContext`,
    require_client_certificate: true,
    common_tls_context: {
      tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
      tls_certificates: [
        { certificate_chain: { filename: '{{tls.cert}}' }, private_key: { filename: '{{tls.key}}' } },
      ],
      // with.sanMatch adds match_typed_subject_alt_names here (after filling: user data).
      validation_context: { trusted_ca: { filename: '{{tls.ca}}' } },
    },
  },
};

/** envoy-http: offered to clients so HTTP/2 can be negotiated. */
export const httpAlpn = ['h2', 'http/1.1'];

const stdoutAccessLog = [
  {
    name: 'envoy.access_loggers.stdout',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog' },
  },
];

/** envoy-http's network filter. Its single route is chosen by the preset (backend or direct). */
export const httpConnectionManager = {
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: 'ingress_http',
    codec_type: 'AUTO',
    access_log: stdoutAccessLog,
    // The edge: the peer address is the client's; client-sent x-forwarded-* are not trusted.
    use_remote_address: true,
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
    common_http_protocol_options: { idle_timeout: '3600s', headers_with_underscores_action: 'REJECT_REQUEST' },
    http2_protocol_options: { max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576 },
    stream_idle_timeout: '300s',
    request_timeout: '300s',
    // The backend learns who called: x-forwarded-client-cert is replaced (never passed through
    // from the client) by the verified client certificate's subject and SANs.
    forward_client_cert_details: 'SANITIZE_SET',
    set_current_client_cert_details: { subject: true, uri: true, dns: true },
    route_config: {
      name: 'local',
      virtual_hosts: [{ name: 'local', domains: ['*'], routes: [] as unknown[] }],
    },
    http_filters: [
      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
    ],
  },
};

export const backendRoute = { match: { prefix: '/' }, route: { cluster: 'backend' } };

/** envoy-http with no with.backendPort: an mTLS endpoint that answers every request itself. */
export const directResponseRoute = {
  match: { prefix: '/' },
  direct_response: { status: 200, body: { inline_string: 'ok\n' } },
};

/** envoy-network's network filter: the decrypted stream goes to the backend as is. */
export const tcpProxy = {
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    stat_prefix: 'ingress_tcp',
    cluster: 'backend',
    access_log: stdoutAccessLog,
  },
};

/** The wrapped program, on loopback only. */
export const backendCluster = {
  name: 'backend',
  type: 'STATIC',
  connect_timeout: '5s',
  per_connection_buffer_limit_bytes: 32768,
  load_assignment: {
    cluster_name: 'backend',
    endpoints: [
      { lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: '{{with.backendPort}}' } } } }] },
    ],
  },
};
