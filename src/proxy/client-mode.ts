// Client mode of any TLS type: plain TCP in on a local listener, TLS out to a remote peer
// (another TEE's init in server mode, stunnel, any TLS server). The type supplies how to
// connect (PSK callback, or certificate and verification).
import { createServer, type Server, type Socket } from 'node:net';
import { type ConnectionOptions, connect } from 'node:tls';
import { formatHostPort } from './address.ts';
import { holdUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason, startPiping } from './connection.ts';

/**
 * `connectOptions()` is called per connection (it reads the current context, so a reload
 * applies to new connections); `fields` go on every log line of the connection.
 */
export function createClientModeServer(ctx: ModeContext, connectOptions: () => ConnectionOptions, fields: Record<string, unknown> = {}): Server {
  const { stats, timeouts, label } = ctx;
  const remote = formatHostPort(ctx.upstream);

  return createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS }, (client: Socket) => {
    const t0 = performance.now();
    const f = { peer: peerOf(client), ...fields };
    // allowHalfOpen is honoured by tls.connect (it builds the TLSSocket with it) but missing from its type.
    const options: ConnectionOptions & { allowHalfOpen: boolean } = {
      ...connectOptions(),
      host: ctx.upstream.host,
      port: ctx.upstream.port,
      allowHalfOpen: true,
    };
    const upstream = connect(options);
    ctx.track(upstream);
    let tcpUp = false;
    let failed = false;
    // A local client gone (reset) before its first byte and before the session was up (a health
    // check): counted apart, not as a failure. A FIN alone is a half-close the session carries
    // (the remote may speak first), so such a client waits for the session like any other.
    client.once('close', () => {
      if (!hold.settled && !failed) ctx.probe(client);
    });
    const hold = holdUpstream(client, upstream, timeouts.handshakeMs, () =>
      Object.assign(new Error(`no TLS session within ${timeouts.handshakeMs} ms`), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }),
    );
    upstream.once('connect', () => {
      tcpUp = true;
      upstream.setNoDelay(true);
      upstream.setKeepAlive(true, KEEPALIVE_MS);
    });
    upstream.once('secureConnect', () => {
      if (!hold.settle()) return;
      startPiping(ctx, client, upstream, upstream, f, t0);
    });
    upstream.on('error', (err) => {
      if (hold.settled) return;
      hold.cancel();
      failed = true;
      if (tcpUp) stats.handshakeFailures++;
      else stats.upstreamFailures++;
      (tcpUp ? ctx.warnHandshake : ctx.warnUpstream)(
        { ...f, remote, reason: reason(err) },
        tcpUp ? `${label} handshake with the remote peer failed; closing the local connection` : `${label} remote peer unreachable; closing the local connection`,
      );
      client.end(() => client.destroy());
    });
  });
}
