// redis: redis-server with mutual TLS only, persisting nothing, an admin socket for the init
// (readiness, and reloading rotated certificates by CONFIG SET) (templates/redis.ts).
import { join } from 'node:path';
import * as T from '../../../templates/redis.ts';
import { expandArgv, type Scope } from '../placeholders.ts';
import { ipAddress, oneOrMore, optional, parseParams, port, withDefault } from '../params.ts';
import type { Preset } from './preset.ts';
import { argsParam, tlsParams, tlsSecrets } from './tls.ts';
import { checkSocketPath } from './unix-socket.ts';

const spec = {
  tlsPort: withDefault(port, 6379),
  /** Addresses to listen on (one or a list); default: Redis's own (every interface). */
  bind: optional(oneOrMore(ipAddress)),
  ...tlsParams,
  ...argsParam,
};
type Params = ReturnType<typeof parse>;
const parse = (raw: unknown) => parseParams(raw, spec, 'redis');

// render() refuses a preset without an output directory before a preset builds.
const socket = (scope: Scope): string => checkSocketPath(join(scope.outputDir!, T.socket), scope, 'redis');
const withSocket = (scope: Scope): Scope => ({ ...scope, preset: { ...scope.preset, 'redis.socket': socket(scope) } });

export const redis: Preset<Params> = {
  name: 'redis',
  takesCommand: false,
  params: parse,
  secrets: tlsSecrets,
  extraArgs: (p) => p.args,
  // The socket appears once redis listens (after the TLS port, before "Ready to accept connections").
  ready: (_p, scope) => ({ unix: socket(scope) }),
  reload: (_p, scope) => ({ exec: expandArgv(T.reloadArgv, withSocket(scope), 'templates/redis.ts reloadArgv'), timeoutMs: T.reloadTimeoutMs }),
  build(p, scope) {
    const argv = expandArgv(T.argv, withSocket(scope), 'templates/redis.ts argv');
    // One argument per address: Redis quotes each argument, so "a b" would be one bad address.
    if (p.bind) argv.push(T.bindOption, ...p.bind);
    return { argv, files: [] };
  },
};
