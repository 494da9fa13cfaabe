// envoy-http and envoy-network: an Envoy v3 bootstrap with one mutual-TLS listener, written to
// the output directory with the SDS files it reads its certificates through, and run as
// `envoy -c PATH` (fragments in templates/envoy.ts).
import * as T from '../../../templates/envoy.ts';
import { configError } from '../../lib/errors.ts';
import { fieldOf, expandArgv, expandData, type Scope } from '../placeholders.ts';
import { count, ipAddress, listOf, mapping, oneOf, optional, parseParams, port, show, text, withDefault, type Param } from '../params.ts';
import { toYaml } from '../serialize.ts';
import { envoyScope, matchSans, tlsSdsFiles } from './envoy-sds.ts';
import { FILE_MODE, type Preset, type PresetOutput } from './preset.ts';
import { argsParam, tlsParams, tlsSecrets } from './tls.ts';

const SAN_TYPES = ['DNS', 'URI', 'EMAIL', 'IP_ADDRESS'] as const;
const MATCHERS = ['exact', 'prefix', 'suffix', 'contains'] as const;

interface SanMatcher {
  san_type: (typeof SAN_TYPES)[number];
  matcher: Partial<Record<(typeof MATCHERS)[number], string>>;
}

/** `{ type: DNS|URI|EMAIL|IP_ADDRESS, exact|prefix|suffix|contains: VALUE }` → Envoy's SubjectAltNameMatcher. */
const sanMatcher: Param<SanMatcher> = (value, field) => {
  const m = mapping(value, field);
  const sanType = oneOf(SAN_TYPES)(m.type, fieldOf(field, 'type'));
  const given = Object.keys(m).filter((k) => k !== 'type');
  const [kind, ...more] = given;
  if (kind === undefined || more.length > 0 || !(MATCHERS as readonly string[]).includes(kind)) {
    throw configError(`${field}: expected type and exactly one of ${MATCHERS.join(', ')}, got ${given.length ? given.join(', ') : 'none'}`);
  }
  return { san_type: sanType, matcher: { [kind]: text(m[kind], fieldOf(field, kind)) } };
};

const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;

function specFor(network: boolean) {
  return {
    listenAddress: withDefault(ipAddress, '0.0.0.0'),
    listenPort: withDefault(port, 8443),
    // envoy-network has nothing to do without a backend; envoy-http answers directly.
    backendPort: network ? port : optional(port),
    adminPort: optional(port),
    /** Client certificates must also carry one of these SANs (any one matches). */
    sanMatch: withDefault(listOf(sanMatcher), [] as SanMatcher[]),
    logLevel: withDefault(oneOf(LOG_LEVELS), 'info'),
    maxConnections: withDefault(count, 1024),
    ...tlsParams,
    ...argsParam,
  };
}

type Params = {
  listenAddress: string;
  listenPort: number;
  backendPort: number | undefined;
  adminPort: number | undefined;
  sanMatch: SanMatcher[];
  logLevel: string;
  maxConnections: number;
  ca: string;
  cert: string;
  key: string;
  args: string[];
};

function parse(raw: unknown, name: 'envoy-http' | 'envoy-network'): Params {
  const p: Params = parseParams(raw, specFor(name === 'envoy-network'), name);
  const ports = [['listenPort', p.listenPort], ['backendPort', p.backendPort], ['adminPort', p.adminPort]] as const;
  for (const [i, [a, pa]] of ports.entries()) {
    for (const [b, pb] of ports.slice(i + 1)) {
      if (pa !== undefined && pa === pb) throw configError(`run.with.${b}: ${show(pb)} is also run.with.${a}`);
    }
  }
  return p;
}

/** A fragment with its placeholders filled (same shape; ports become numbers). */
const fill = <F>(fragment: F, scope: Scope, what: string): F => expandData(fragment, scope, `templates/envoy.ts ${what}`) as F;

function build(network: boolean, p: Params, scope: Scope): PresetOutput {
  const s = envoyScope(scope);
  const tls = fill(T.downstreamTls, s, 'downstreamTls');
  const common: Record<string, unknown> = tls.typed_config.common_tls_context;
  if (!network) common.alpn_protocols = [...T.httpAlpn];
  // User data, added after filling: a SAN value is never read as a template.
  if (p.sanMatch.length > 0) matchSans(common, p.sanMatch);

  let filter: unknown;
  if (network) {
    filter = fill(T.tcpProxy, s, 'tcpProxy');
  } else {
    const hcm = fill(T.httpConnectionManager, s, 'httpConnectionManager');
    const route = p.backendPort === undefined ? fill(T.directResponseRoute, s, 'directResponseRoute') : fill(T.backendRoute, s, 'backendRoute');
    hcm.typed_config.route_config.virtual_hosts[0]!.routes.push(route);
    filter = hcm;
  }

  const bootstrap = {
    node: fill(T.node, s, 'node'),
    ...(p.adminPort === undefined ? {} : { admin: fill(T.admin, s, 'admin') }),
    overload_manager: fill(T.overloadManager, s, 'overloadManager'),
    static_resources: {
      listeners: [{ ...fill(T.listener, s, 'listener'), filter_chains: [{ transport_socket: tls, filters: [filter] }] }],
      clusters: p.backendPort === undefined ? [] : [fill(T.backendCluster, s, 'backendCluster')],
    },
  };
  return {
    argv: expandArgv(T.argv, s, 'templates/envoy.ts argv'),
    files: [{ name: T.configFile, content: toYaml(bootstrap), mode: FILE_MODE }, ...tlsSdsFiles(s)],
  };
}

function envoyPreset(name: 'envoy-http' | 'envoy-network'): Preset<Params> {
  const network = name === 'envoy-network';
  return {
    name,
    takesCommand: false,
    params: (raw) => parse(raw, name),
    secrets: tlsSecrets,
    extraArgs: (p) => p.args,
    build: (p, scope) => build(network, p, scope),
    // Envoy watches OUT itself (SDS from files) and swaps certificates for new connections.
    reload: () => 'none',
  };
}

export const envoyHttp = envoyPreset('envoy-http');
export const envoyNetwork = envoyPreset('envoy-network');
