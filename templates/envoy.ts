// Envoy v3 bootstrap fragments for the envoy-http and envoy-network presets, as data.
// src/render/presets/envoy.ts fills each fragment's placeholders at the data level, puts them
// together and serializes the result as YAML (envoy.yaml in the output directory, and the SDS
// files it names). Data only, and two small builders of data (sdsSource, sdsFile).
//
// Placeholders: {{with.listenAddress}} (default 0.0.0.0), {{with.listenPort}} (default 8443),
// {{with.backendPort}}, {{with.adminPort}}, {{with.logLevel}} (default info), {{tls.ca}},
// {{tls.cert}}, {{tls.key}} (paths: certificates are referenced by file, never inlined),
// {{with.maxConnections}} (default 1024), {{envoy.config}} (the rendered bootstrap's path), {{envoy.sds.cert}}, {{envoy.sds.ca}} (the
// rendered SDS files' paths), {{output.dir}}.
// Limits follow Envoy's "Configuring Envoy as an edge proxy" best practices.
//
// Certificates, keys and CAs reach Envoy through SDS from files, never as filenames in the
// bootstrap (read once): the bootstrap names an SDS file per secret (path_config_source), the
// file names the material by its visible path (OUT/NAME -> ..data/NAME) and a watched
// directory, OUT. A rotation swaps OUT/..data (a rename into OUT); Envoy's watch on OUT sees
// it, re-reads the certificate and key together (checking they did not change in between) and
// uses them for new connections. Nothing is restarted, so the presets' reload is 'none'.

export const configFile = 'envoy.yaml';

/** The SDS resource files, rendered beside the bootstrap (one secret each: Envoy's SDS takes one). */
export const sdsFiles = { cert: 'envoy-sds-cert.yaml', ca: 'envoy-sds-ca.yaml' } as const;

/** SDS needs a node id and cluster (Envoy refuses an SDS subscription without them). */
export const node = { id: 'tee-init', cluster: 'tee-init' };

export const argv = [
  'envoy',
  '-c', '{{envoy.config}}',
  // tee-init is the supervisor: no hot-restart shared memory, no parent/child Envoy handover.
  '--disable-hot-restart',
  // The SDS files are "dynamic" config, where Envoy by default only warns about an unknown
  // field: a misspelt watched_directory would silently turn rotation off. Refuse it instead.
  '--reject-unknown-dynamic-fields',
  '--log-level', '{{with.logLevel}}',
];

const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3';

/** Where a secret comes from: its SDS file, re-read when something is moved into OUT. */
export const sdsSource = (file: string, watched = '{{output.dir}}') => ({
  path_config_source: { path: file, watched_directory: { path: watched } },
  resource_api_version: 'V3',
});

/** A bootstrap's reference to the certificate and key (CommonTlsContext.tls_certificate_sds_secret_configs). */
export const certificateSds = { name: 'cert', sds_config: sdsSource('{{envoy.sds.cert}}') };
/** A bootstrap's reference to the CA (validation_context_sds_secret_config). */
export const trustSds = { name: 'ca', sds_config: sdsSource('{{envoy.sds.ca}}') };

/** A DiscoveryResponse-like SDS file holding one Secret. */
export const sdsFile = (secret: Record<string, unknown>) => ({ resources: [{ '@type': `${TLS}.Secret`, ...secret }] });

/** envoy-sds-cert.yaml: the certificate chain and key by their visible paths, read as a pair. */
export const certificateSecret = sdsFile({
  name: 'cert',
  tls_certificate: {
    certificate_chain: { filename: '{{tls.cert}}' },
    private_key: { filename: '{{tls.key}}' },
    watched_directory: { path: '{{output.dir}}' },
  },
});

/** envoy-sds-ca.yaml: the CA that peer certificates must chain to. */
export const trustSecret = sdsFile({
  name: 'ca',
  validation_context: { trusted_ca: { filename: '{{tls.ca}}' }, watched_directory: { path: '{{output.dir}}' } },
});

/**
 * Every bootstrap: a bound on downstream connections across all listeners (Envoy's edge best
 * practice; without it a flood of idle connections holds file descriptors and memory until the
 * process dies). Past it Envoy refuses new connections.
 */
export const overloadManager = {
  resource_monitors: [{
    name: 'envoy.resource_monitors.global_downstream_max_connections',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig',
      max_active_downstream_connections: '{{with.maxConnections}}',
    },
  }],
};

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
      tls_certificate_sds_secret_configs: [certificateSds],
      // with.sanMatch turns this into a combined_validation_context whose static part holds
      // match_typed_subject_alt_names (after filling: user data); the CA stays on SDS.
      validation_context_sds_secret_config: trustSds,
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

// An explicit route timeout, as long as request_timeout: Envoy's default (15 s) would cut a slow
// answer long before the request timeout the connection manager allows.
export const backendRoute = { match: { prefix: '/' }, route: { cluster: 'backend', timeout: '300s' } };

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
