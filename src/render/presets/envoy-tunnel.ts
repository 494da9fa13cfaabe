// envoy-tunnel-client and envoy-tunnel-server: the "mTLS on Cloud Run" demo's Envoy topology,
// one Envoy per side (fragments in templates/envoy-tunnel.ts), on the same wire as tee-init's
// own `type: tunnel` listeners: POST on a path (or CONNECT), :authority the service's host.
import { dirname, isAbsolute, join, normalize } from 'node:path';
import * as E from '../../../templates/envoy.ts';
import * as T from '../../../templates/envoy-tunnel.ts';
import { checkEndpointUrl } from '../../config/endpoints.ts';
import { configError } from '../../lib/errors.ts';
import { expandArgv, expandData, type Scope } from '../placeholders.ts';
import { count, ipAddress, oneOf, optional, parseParams, port, show, text, withDefault, type Param } from '../params.ts';
import { toYaml } from '../serialize.ts';
import type { RenderedFile } from '../types.ts';
import { envoyScope, matchSans, sdsFile, tlsSdsFiles } from './envoy-sds.ts';
import { FILE_MODE, type Preset, type PresetOutput } from './preset.ts';
import { argsParam, tlsParams, tlsSecrets } from './tls.ts';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;

/** The tunnel server's URL: https (or http to loopback, then h2c); user info and fragments refused. */
const tunnelUrl: Param<URL> = (value, field) => {
  const s = text(value, field);
  const problem = checkEndpointUrl(s);
  if (problem) throw configError(`${field} ${show(s)}: ${problem}`);
  const u = new URL(s);
  if (u.username || u.password || u.hash) throw configError(`${field} ${show(s)}: no user, password or #fragment in a tunnel URL`);
  return u;
};

const pathParam: Param<string> = (value, field) => {
  const s = text(value, field);
  if (!/^\/[\x21-\x7e]*$/.test(s)) throw configError(`${field}: expected an absolute path like /, got ${show(value)}`);
  return s;
};

/** A file Envoy reads and watches: an absolute path (its directory is watched for swaps). */
const absoluteFile: Param<string> = (value, field) => {
  const s = text(value, field);
  if (!isAbsolute(s) || s.includes('\0') || s.endsWith('/')) throw configError(`${field}: expected an absolute file path like /etc/ssl/certs/ca-certificates.crt, got ${show(value)}`);
  return normalize(s);
};

const streams: Param<number> = (value, field) => {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 10_000) throw configError(`${field}: expected 1-10000, got ${show(value)}`);
  return value;
};

const common = {
  innerPort: withDefault(port, 15001),
  adminPort: optional(port),
  logLevel: withDefault(oneOf(LOG_LEVELS), 'info'),
  maxConnections: withDefault(count, 1024),
  ...tlsParams,
  ...argsParam,
};

const clientSpec = {
  url: tunnelUrl,
  method: withDefault(oneOf(['POST', 'CONNECT'] as const), 'POST'),
  listenAddress: withDefault(ipAddress, '127.0.0.1'),
  listenPort: withDefault(port, 7777),
  /** The name the other side's (inner) certificate must carry; absent: the CA alone is checked. */
  serverName: optional(text),
  /** Trust for the front door's certificate (https URLs). */
  serverCa: withDefault(absoluteFile, '/etc/ssl/certs/ca-certificates.crt'),
  ...common,
};

const serverSpec = {
  listenAddress: withDefault(ipAddress, '0.0.0.0'),
  listenPort: withDefault(port, 8080),
  backendPort: port,
  path: withDefault(pathParam, '/'),
  maxStreams: withDefault(streams, 100),
  ...common,
};

type ClientParams = ReturnType<typeof parseClient>;
type ServerParams = ReturnType<typeof parseServer>;

function distinctPorts(name: string, ports: [string, number | undefined][]): void {
  for (const [i, [a, pa]] of ports.entries()) {
    for (const [b, pb] of ports.slice(i + 1)) {
      if (pa !== undefined && pa === pb) throw configError(`run.with.${b}: ${show(pb)} is also run.with.${a} (${name})`);
    }
  }
}

const parseClient = (raw: unknown) => {
  const p = parseParams(raw, clientSpec, 'envoy-tunnel-client');
  distinctPorts('envoy-tunnel-client', [['listenPort', p.listenPort], ['innerPort', p.innerPort], ['adminPort', p.adminPort]]);
  return p;
};
const parseServer = (raw: unknown) => {
  const p = parseParams(raw, serverSpec, 'envoy-tunnel-server');
  distinctPorts('envoy-tunnel-server', [['listenPort', p.listenPort], ['innerPort', p.innerPort], ['backendPort', p.backendPort], ['adminPort', p.adminPort]]);
  return p;
};

const fill = <F>(fragment: F, scope: Scope, what: string): F => expandData(fragment, scope, `templates/envoy-tunnel.ts ${what}`) as F;

function output(s: Scope, listeners: unknown[], clusters: unknown[], adminPort: number | undefined, sds: RenderedFile[]): PresetOutput {
  const bootstrap = {
    node: expandData(E.node, s, 'templates/envoy.ts node'),
    ...(adminPort === undefined ? {} : { admin: expandData(E.admin, s, 'templates/envoy.ts admin') }),
    overload_manager: expandData(E.overloadManager, s, 'templates/envoy.ts overloadManager'),
    static_resources: { listeners, clusters },
  };
  return {
    argv: expandArgv(E.argv, s, 'templates/envoy.ts argv'),
    files: [{ name: E.configFile, content: toYaml(bootstrap), mode: FILE_MODE }, ...sds],
  };
}

function buildClient(p: ClientParams, scope: Scope): PresetOutput {
  const u = p.url;
  const https = u.protocol === 'https:';
  const portNumber = Number(u.port || (https ? 443 : 80));
  const s = envoyScope(scope, {
    'tunnel.host': u.hostname.replace(/^\[|\]$/g, ''),
    'tunnel.port': portNumber,
    // The same :authority tee-init's client sends: host[:port], the port only when not the default.
    'tunnel.hostname': p.method === 'CONNECT' ? `${u.hostname}:${portNumber}` : u.host,
    'tunnel.path': `${u.pathname}${u.search}`,
    'tunnel.serverCa': p.serverCa,
    'tunnel.serverCaDir': dirname(p.serverCa),
    'envoy.sds.serverCa': join(scope.outputDir!, T.serverTrustFile),
  });
  const inner = fill(T.clientInnerCluster, s, 'clientInnerCluster');
  if (p.serverName !== undefined) {
    // User data, added after filling: a name is never read as a template.
    Object.assign(inner.transport_socket.typed_config, { sni: p.serverName });
    matchSans(inner.transport_socket.typed_config.common_tls_context, [{ san_type: 'DNS', matcher: { exact: p.serverName } }]);
  }
  const tunnel = fill(T.clientTunnelListener, s, 'clientTunnelListener');
  if (p.method === 'POST') {
    Object.assign(tunnel.filter_chains[0]!.filters[0]!.typed_config.tunneling_config, { use_post: true, post_path: s.preset!['tunnel.path'] });
  }
  const server: Record<string, unknown> = fill(T.clientTunnelCluster, s, 'clientTunnelCluster');
  const sds = tlsSdsFiles(s);
  if (https) {
    server.transport_socket = fill(T.clientTunnelTls, s, 'clientTunnelTls');
    sds.push(sdsFile(T.serverTrustFile, T.serverTrustSecret, s, 'templates/envoy-tunnel.ts serverTrustSecret'));
  }
  return output(s, [fill(T.clientAppListener, s, 'clientAppListener'), tunnel], [inner, server], p.adminPort, sds);
}

function buildServer(p: ServerParams, scope: Scope): PresetOutput {
  const s = envoyScope(scope, { 'tunnel.path': p.path });
  const inner = {
    ...fill(T.serverInnerListener, s, 'serverInnerListener'),
    filter_chains: [{ transport_socket: expandData(E.downstreamTls, s, 'templates/envoy.ts downstreamTls'), filters: [fill(T.serverInnerProxy, s, 'serverInnerProxy')] }],
  };
  return output(
    s,
    [fill(T.serverTunnelListener, s, 'serverTunnelListener'), inner],
    [fill(T.serverInnerCluster, s, 'serverInnerCluster'), expandData(E.backendCluster, s, 'templates/envoy.ts backendCluster')],
    p.adminPort,
    tlsSdsFiles(s),
  );
}

export const envoyTunnelClient: Preset<ClientParams> = {
  name: 'envoy-tunnel-client',
  takesCommand: false,
  params: parseClient,
  secrets: tlsSecrets,
  extraArgs: (p) => p.args,
  build: buildClient,
  // Envoy watches its SDS files' directories itself and swaps certificates for new connections.
  reload: () => 'none',
};

export const envoyTunnelServer: Preset<ServerParams> = {
  name: 'envoy-tunnel-server',
  takesCommand: false,
  params: parseServer,
  secrets: tlsSecrets,
  extraArgs: (p) => p.args,
  build: buildServer,
  reload: () => 'none',
};
