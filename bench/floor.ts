// The floor (issue 19): what Node itself costs to terminate TLS and forward the bytes. A minimal
// proxy, no engine: a TLS server (TLS-PSK, or certificates with a required client certificate),
// or a plain TCP server, each connection piped to a TCP connection to the upstream both ways
// with Node's own pipe(), half-close kept. tee-init's data plane is measured against this.
// Usage: node bench/floor.ts --auth psk|mtls|plain --listen PORT --connect PORT
//   [--psk HEX (identity Client1)] [--cert F --key F --ca F]
// FLOOR_WORKER=1 runs the same server in one worker thread with the listener threads' heap
// limits (WORKER_HEAP): what Node costs there, against which the init's default (its listeners
// in worker threads) is read.
import { readFileSync } from 'node:fs';
import { connect, createServer as createTcpServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { parseArgs } from 'node:util';
import { isMainThread, Worker } from 'node:worker_threads';
import { WORKER_HEAP } from '../src/proxy/workers.ts';

const { values: a } = parseArgs({ options: { auth: { type: 'string' }, listen: { type: 'string' }, connect: { type: 'string' }, psk: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' } } });
const upstreamPort = Number(a.connect);

function forward(client: Socket): void {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort, allowHalfOpen: true, noDelay: true });
  // pipe() ends the destination when the source ends (half-close) and handles backpressure.
  client.pipe(upstream).pipe(client);
  const both = () => (client.destroy(), upstream.destroy());
  client.on('error', both);
  upstream.on('error', both);
}

if (isMainThread && process.env.FLOOR_WORKER === '1') {
  new Worker(new URL(import.meta.url), { argv: process.argv.slice(2), resourceLimits: WORKER_HEAP });
  process.on('SIGTERM', () => process.exit(0));
} else {
  serve();
}

function serve(): void {
  const tls13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', allowHalfOpen: true, noDelay: true } as const;
  const server = a.auth === 'plain'
    ? createTcpServer({ allowHalfOpen: true, noDelay: true }, forward)
    : a.auth === 'psk'
      ? createTlsServer({ ...tls13, pskCallback: (_s, id) => (id === 'Client1' ? Buffer.from(a.psk!, 'hex') : null) }, forward)
      : createTlsServer({ ...tls13, cert: readFileSync(a.cert!), key: readFileSync(a.key!), ca: readFileSync(a.ca!), requestCert: true, rejectUnauthorized: true }, forward);
  server.on('tlsClientError', () => {});
  server.listen(Number(a.listen), '127.0.0.1');
  // A clean exit on SIGTERM, so that `node --cpu-prof bench/floor.ts` writes its profile.
  if (isMainThread) process.on('SIGTERM', () => process.exit(0));
}
