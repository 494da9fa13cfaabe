// postgres: a PostgreSQL server with TLS and client-certificate authentication only
// (templates/postgres.ts), its data directory given or initialised by an initdb oneshot.
import { join } from 'node:path';
import * as T from '../../../templates/postgres.ts';
import { expandArgv, expandText } from '../placeholders.ts';
import { ipAddress, oneOrMore, parseParams, port, text, withDefault } from '../params.ts';
import { FILE_MODE, type Preset } from './preset.ts';
import { argsParam, tlsParams, tlsSecrets } from './tls.ts';
import { checkSocketPath } from './unix-socket.ts';

const spec = {
  port: withDefault(port, 5432),
  /** Addresses to listen on for TLS clients (one or a list). */
  listenAddresses: withDefault(oneOrMore(ipAddress), ['0.0.0.0']),
  /** The data directory; default {{output.dir}}/pgdata (what an initdb oneshot creates). */
  dataDir: withDefault(text, ''),
  ...tlsParams,
  ...argsParam,
};
type Params = ReturnType<typeof parse>;
const parse = (raw: unknown) => parseParams(raw, spec, 'postgres');

export const postgres: Preset<Params> = {
  name: 'postgres',
  takesCommand: false,
  params: parse,
  secrets: tlsSecrets,
  extraArgs: (p) => p.args,
  stopSignal: T.stopSignal,
  ready: (_p, scope) => ({ unix: checkSocketPath(expandText(T.readySocket, scope, 'templates/postgres.ts readySocket'), scope, 'postgres') }),
  // PostgreSQL re-reads ssl_cert_file, ssl_key_file and ssl_ca_file on SIGHUP (new connections
  // get the new ones, open ones keep theirs); a set it cannot load is logged and the old one kept.
  reload: () => ({ signal: T.reloadSignal }),
  build(p, scope) {
    // render() refuses a preset without an output directory before building it.
    const dataDir = p.dataDir === '' ? join(scope.outputDir!, 'pgdata') : expandText(p.dataDir, scope, 'run.with.dataDir');
    const s = { ...scope, preset: { ...scope.preset, 'pg.dataDir': dataDir, 'pg.listen': p.listenAddresses.join(','), 'pg.hba': join(scope.outputDir!, T.hbaFile) } };
    return {
      argv: expandArgv(T.argv, s, 'templates/postgres.ts argv'),
      files: [{ name: T.hbaFile, content: T.hba, mode: FILE_MODE }],
    };
  },
};
