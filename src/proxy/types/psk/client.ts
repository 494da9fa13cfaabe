// Client mode: plain TCP in on a local listener, TLS-PSK out to a remote peer (another TEE's
// init in server mode, stunnel, any TLS-PSK server).
import { createServer, type Server, type Socket } from 'node:net';
import { type ConnectionOptions, connect, createSecureContext } from 'node:tls';
import { formatHostPort } from '../../address.ts';
import { holdUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason, startPiping } from '../../connection.ts';
import { type PskTlsOptions, versionOptions } from './tls-options.ts';

export interface ClientModeOptions {
  identity: string;
  /** identity → key, read at each handshake (a rekey swaps it); the caller keeps the buffers alive. */
  keys: ReadonlyMap<string, Buffer>;
  tls: PskTlsOptions;
}

export function createPskClient({ identity, keys, tls }: ClientModeOptions, ctx: ModeContext): Server {
  const { stats, timeouts } = ctx;
  const remote = formatHostPort(ctx.upstream);
  // One context for all connections: tls.connect would otherwise build a new one (an SSL_CTX)
  // per connection, which costs more than the rest of the handshake setup.
  const secureContext = createSecureContext(versionOptions(tls));

  return createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS }, (client: Socket) => {
    const t0 = performance.now();
    const fields = { peer: peerOf(client), identity };
    // allowHalfOpen is honoured by tls.connect (it builds the TLSSocket with it) but missing from its type.
    const connectOptions: ConnectionOptions & { allowHalfOpen: boolean } = {
      host: ctx.upstream.host,
      port: ctx.upstream.port,
      secureContext,
      allowHalfOpen: true,
      // Called once with hint null for a TLS 1.3 ClientHello, again with the server's hint if 1.2
      // is chosen: the answer is the same. No certificate is involved, so nothing to check.
      pskCallback: () => ({ psk: keys.get(identity)!, identity }),
      checkServerIdentity: () => undefined,
    };
    const upstream = connect(connectOptions);
    ctx.track(upstream);
    let tcpUp = false;
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
      startPiping(ctx, client, upstream, upstream, fields, t0);
    });
    upstream.on('error', (err) => {
      if (hold.settled) return;
      hold.cancel();
      if (tcpUp) stats.handshakeFailures++;
      else stats.upstreamFailures++;
      (tcpUp ? ctx.warnHandshake : ctx.warnUpstream)(
        { ...fields, remote, reason: reason(err) },
        tcpUp ? 'psk handshake with the remote peer failed; closing the local connection' : 'psk remote peer unreachable; closing the local connection',
      );
      client.end(() => client.destroy());
    });
  });
}
