// Server mode: TLS-PSK in, plain TCP out to the supervised program.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { formatHostPort } from '../../address.ts';
import { holdUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason, startPiping } from '../../connection.ts';
import { KEY_BYTES } from './combine.ts';
import { type PskTlsOptions, versionOptions } from './tls-options.ts';

export interface ServerModeOptions {
  /** identity → key. Read during handshakes only; the caller keeps the buffers alive and unchanged. */
  identities: ReadonlyMap<string, Buffer>;
  tls: PskTlsOptions;
}

export function createPskServer({ identities, tls }: ServerModeOptions, ctx: ModeContext): Server {
  const { stats, timeouts, warnHandshake, warnUpstream } = ctx;
  const upstreamText = formatHostPort(ctx.upstream);
  // The identity a client presented, for the log line if its handshake then fails.
  const presented = new WeakMap<TLSSocket, string>();

  const server = createServer({
    ...versionOptions(tls),
    allowHalfOpen: true,
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

  server.on('tlsClientError', (err, socket) => {
    // Node leaves the socket open on a handshake timeout once this event has a listener.
    socket.destroy();
    stats.handshakeFailures++;
    const identity = presented.get(socket);
    warnHandshake(
      { peer: peerOf(socket), identity, knownIdentity: identity === undefined ? undefined : identities.has(identity), reason: reason(err) },
      'psk handshake failed',
    );
  });

  server.on('secureConnection', (client: TLSSocket) => {
    const t0 = performance.now();
    const fields = { peer: peerOf(client), identity: presented.get(client) };
    const upstream = connect({ host: ctx.upstream.host, port: ctx.upstream.port, allowHalfOpen: true, noDelay: true });
    ctx.track(upstream);
    const hold = holdUpstream(client, upstream, timeouts.connectMs, () =>
      Object.assign(new Error(`no connection within ${timeouts.connectMs} ms`), { code: 'ETIMEDOUT' }),
    );
    upstream.once('connect', () => {
      if (!hold.settle()) return;
      upstream.setKeepAlive(true, KEEPALIVE_MS);
      startPiping(ctx, client, upstream, client, fields, t0);
    });
    upstream.on('error', (err) => {
      if (hold.settled) return;
      hold.cancel();
      stats.upstreamFailures++;
      warnUpstream({ ...fields, upstream: upstreamText, reason: reason(err) }, 'psk upstream unreachable; closing the client connection');
      // close_notify, then close: the client learns at once, and cleanly.
      client.end(() => client.destroy());
    });
  });

  return server;
}
