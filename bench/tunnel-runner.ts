// Runs one tunnel listener in its own process for bench/tunnel.ts (its own CPU, its CPU time
// readable from /proc), the way the init would run it: the type's schema, a real ListenerEnv.
// Reads one JSON object on stdin: { "config": { type: tunnel, ... }, "secrets": { NAME: PEM path } }.
// Prints "listening PORT" once it listens; closes on SIGTERM.
import { readFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { createLog } from '../src/log.ts';
import { tunnelType } from '../src/proxy/types/tunnel.ts';

const input = JSON.parse(await text(process.stdin)) as { config: unknown; secrets?: Record<string, string> };
const secrets = new Map(Object.entries(input.secrets ?? {}).map(([k, path]) => [k, readFileSync(path)]));
const log = createLog({ level: 'warn' });
const handle = await tunnelType.start(tunnelType.schema.parse(input.config), {
  name: 'bench',
  log: log.child({ listener: 'bench' }),
  secret: (n) => secrets.get(n) ?? (() => { throw new Error(`no secret ${n}`); })(),
  tokens: { source: () => { throw new Error('no tokens in the benchmark'); } },
  signal: new AbortController().signal,
});
for (const s of secrets.values()) s.fill(0);
process.stdout.write(`listening ${handle.address.port}\n`);
process.once('SIGTERM', () => {
  void handle.close().then(() => process.exit(0));
});
