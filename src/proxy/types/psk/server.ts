// Server mode: TLS-PSK in, plain TCP out to the supervised program.
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { type FaultSink, guard } from '../../boundary.ts';
import { forwardToUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason, startPiping } from '../../connection.ts';
import { KEY_BYTES } from './combine.ts';
import { type PskTlsOptions, versionOptions } from './tls-options.ts';

export interface ServerModeOptions {
  /** identity → key. Read during handshakes only; the caller keeps the buffers alive and unchanged. */
  identities: ReadonlyMap<string, Buffer>;
  tls: PskTlsOptions;
  /** Ends a connection whose handling threw (../../boundary.ts). */
  fault: FaultSink;
}

export function createPskServer({ identities, tls, fault }: ServerModeOptions, ctx: ModeContext): Server {
  const { stats, timeouts, warnHandshake } = ctx;
  // The identity a client presented, for the log line if its handshake then fails.
  const presented = new WeakMap<TLSSocket, string>();

  const server = createServer({
    ...versionOptions(tls),
    // Off until the handshake is done (then on, in secureConnection): a peer that connects and
    // sends its FIN without a byte (a health check) must free its slot at once, not hold it
    // until the handshake timeout.
    allowHalfOpen: false,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: KEEPALIVE_MS,
    handshakeTimeout: timeouts.handshakeMs,
    pskCallback(socket, identity) {
      presented.set(socket, identity);
      // An unknown identity gets a fresh random key instead of null: the handshake then fails
      // exactly as with a wrong key (bad binder), so a client cannot probe which identities exist.
      // (null makes OpenSSL fall back to a certificate handshake, which fails differently.)
      return identities.get(identity) ?? randomBytes(KEY_BYTES);
    },
  });

  // A throw in a handler ends that connection, never the listener.
  const onFault = (err: unknown, socket: TLSSocket) => fault(err, { peer: peerOf(socket) }, socket);

  server.on('tlsClientError', guard((err, _e: Error, socket: TLSSocket) => onFault(err, socket), (err: Error, socket: TLSSocket) => {
    // Node leaves the socket open on a handshake timeout once this event has a listener.
    socket.destroy();
    if (ctx.probe(socket, err)) return;
    stats.handshakeFailures++;
    const identity = presented.get(socket);
    const known = identity === undefined ? undefined : identities.has(identity);
    warnHandshake(
      { peer: peerOf(socket), identity, knownIdentity: known, reason: reason(err) },
      `psk handshake failed${why(reason(err), identity, known)}`,
    );
  }));

  server.on('secureConnection', guard(onFault, (client: TLSSocket) => {
    client.allowHalfOpen = true; // half-close reaches the program from here on
    const fields = { peer: peerOf(client), identity: presented.get(client) };
    const t0 = performance.now();
    forwardToUpstream(ctx, client, client, fields, t0, guard(
      (err, upstream: Socket) => fault(err, fields, client, upstream),
      (upstream: Socket) => startPiping(ctx, client, upstream, client, fields, t0),
    ));
  }));

  return server;
}

/** The failure in words where the code alone would send the reader to OpenSSL's sources. */
function why(code: string, identity: string | undefined, known: boolean | undefined): string {
  // A bad PSK binder: the client's key is not ours (an unknown identity fails the same way, by design).
  if (code !== 'ERR_SSL_BINDER_DOES_NOT_VERIFY' || identity === undefined) return '';
  return known
    ? `: wrong key for identity ${JSON.stringify(identity)} (the client's key is not the one combined from the shares: check its shares, combine, salt and info)`
    : `: unknown identity ${JSON.stringify(identity)} (not under identities:)`;
}
