// Runs one PSK proxy in its own process for bench/psk.ts, so its RSS and file descriptors can be
// read from /proc and it gets a CPU of its own, as stunnel does.
// Reads one JSON object on stdin (the key travels there, never in argv):
//   { "mode": "server"|"client", "listen": "127.0.0.1:0", "connect": "127.0.0.1:P",
//     "identity": "Client1", "keyHex": "...", "maxConnections": 20000, "logLevel": "warn" }
// Prints "listening PORT" once it listens; closes on SIGTERM.
import { text } from 'node:stream/consumers';
import { createLog, type LogLevel } from '../src/lib/log.ts';
import { startPskProxy } from '../src/proxy/types/psk/index.ts';

const opts = JSON.parse(await text(process.stdin)) as {
  mode: 'server' | 'client'; listen: string; connect: string; identity: string; keyHex: string; maxConnections?: number; logLevel?: LogLevel;
};
const log = createLog({ level: opts.logLevel ?? 'warn' });
const key = Buffer.from(opts.keyHex, 'hex');
const common = { listen: opts.listen, connect: opts.connect, log, maxConnections: opts.maxConnections ?? 20_000, ready: false as const };
const proxy = opts.mode === 'server'
  ? await startPskProxy({ ...common, mode: 'server', identities: new Map([[opts.identity, key]]) })
  : await startPskProxy({ ...common, mode: 'client', identity: opts.identity, key });
key.fill(0);
process.stdout.write(`listening ${proxy.address.port}\n`);
process.once('SIGTERM', () => {
  void proxy.close().then(() => process.exit(0));
});
