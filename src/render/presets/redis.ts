// redis: redis-server with mutual TLS only, persisting nothing (templates/redis.ts).
import * as T from '../../../templates/redis.ts';
import { expandArgv } from '../placeholders.ts';
import { ipAddress, oneOrMore, optional, parseParams, port, withDefault } from '../params.ts';
import type { Preset } from './preset.ts';
import { argsParam, tlsParams, tlsSecrets } from './tls.ts';

const spec = {
  tlsPort: withDefault(port, 6379),
  /** Addresses to listen on (one or a list); default: Redis's own (every interface). */
  bind: optional(oneOrMore(ipAddress)),
  ...tlsParams,
  ...argsParam,
};
type Params = ReturnType<typeof parse>;
const parse = (raw: unknown) => parseParams(raw, spec, 'redis');

export const redis: Preset<Params> = {
  name: 'redis',
  takesCommand: false,
  params: parse,
  secrets: tlsSecrets,
  extraArgs: (p) => p.args,
  build(p, scope) {
    const argv = expandArgv(T.argv, scope, 'templates/redis.ts argv');
    // One argument per address: Redis quotes each argument, so "a b" would be one bad address.
    if (p.bind) argv.push(T.bindOption, ...p.bind);
    return { argv, files: [] };
  },
};
