// Runs one egress proxy (the http-proxy listener type with real token sources) in its own
// process for bench/egress.ts, as the init would run it. Reads one JSON object on stdin:
//   { "credentials": {...}, "endpoints": {...}, "tokenFile": "...", "listener": {...}, "secrets": { name: "PEM" } }
// Prints "listening PORT" once it listens; closes on SIGTERM.
import { text } from 'node:stream/consumers';
import type { Config } from '../src/config/schema.ts';
import { createTokenSources } from '../src/credentials/tokens/index.ts';
import { createLog } from '../src/log.ts';
import { httpProxySchema, httpProxyType } from '../src/proxy/types/http-proxy.ts';

const input = JSON.parse(await text(process.stdin)) as {
  credentials: Config['credentials']; endpoints: Config['endpoints']; tokenFile: string; listener: unknown; secrets: Record<string, string>;
};
const log = createLog({ level: 'warn' });
const tokens = createTokenSources(input.credentials, {
  tokenFile: input.tokenFile, endpoints: input.endpoints, teeserverTimeoutMs: 5000, log,
  retry: { deadlineMs: 30_000, initialBackoffMs: 200, maxBackoffMs: 5000, attemptTimeoutMs: 10_000 },
});
const proxy = await httpProxyType.start(httpProxySchema.parse(input.listener), {
  name: 'egress', log, tokens, signal: new AbortController().signal,
  secret: (n) => Buffer.from(input.secrets[n]!),
});
process.stdout.write(`listening ${proxy.address.port}\n`);
process.once('SIGTERM', () => {
  tokens.close();
  void proxy.close().then(() => process.exit(0));
});
