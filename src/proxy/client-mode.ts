// Client mode of any TLS type: plain TCP in on a local listener, TLS out to a remote peer
// (another TEE's init in server mode, stunnel, any TLS server). The type supplies how to
// connect (PSK callback, or certificate and verification).
import { createServer, type Server, type Socket } from 'node:net';
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';
import { formatHostPort } from '../lib/address.ts';
import { type FaultSink, guard } from './boundary.ts';
import { holdUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason, startPiping } from './connection.ts';

export interface ClientModeOptions {
  /** Ends a connection whose handling threw (./boundary.ts). */
  fault: FaultSink;
  /** Go on every log line of the connection. */
  fields?: Record<string, unknown>;
  /**
   * What to check when the remote peer refuses us after the handshake (a TLS 1.3 server checks
   * a client certificate only then). Set, a close before any byte right after the handshake is
   * also read as a likely refusal: a tee-init server refuses that way (./types/tls/server.ts).
   */
  refusalHint?: string;
  /** Runs once the TLS session is up and before anything is forwarded (attested TLS); rejects to refuse the peer. */
  verifyPeer?: ((upstream: TLSSocket) => Promise<unknown>) | undefined;
}

/**
 * `connectOptions()` is called per connection (it reads the current context, so a reload
 * applies to new connections). Every handler runs inside guard(): a throw ends that connection
 * (both sockets) through `fault`.
 */
export function createClientModeServer(ctx: ModeContext, connectOptions: () => ConnectionOptions, { fault, fields = {}, refusalHint, verifyPeer }: ClientModeOptions): Server {
  const { stats, timeouts, label } = ctx;
  const remote = formatHostPort(ctx.upstream);

  return createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS }, guard((err, client: Socket) => fault(err, { peer: peerOf(client), ...fields }, client), (client: Socket) => {
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
    const fail = (err: unknown) => fault(err, f, client, upstream);
    const g = <A extends unknown[]>(fn: (...args: A) => unknown) => guard(fail, fn);
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
    upstream.once('connect', g(() => {
      tcpUp = true;
      upstream.setNoDelay(true);
      upstream.setKeepAlive(true, KEEPALIVE_MS);
    }));
    const pipe = g(() => {
      if (!hold.settle()) return;
      watchRefusal(upstream, f, g);
      startPiping(ctx, client, upstream, upstream, f, t0);
    });
    upstream.once('secureConnect', g(() => {
      if (!verifyPeer) return pipe();
      // The hold's deadline (the handshake timeout) still runs: it bounds the verification too.
      verifyPeer(upstream).then(pipe, g((err: Error) => upstream.destroy(Object.assign(new Error(`attestation refused: ${err.message}`), { code: undefined }))));
    }));
    upstream.on('error', g((err: Error) => {
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
    }));
  }));

  /**
   * A refusal that comes after our side of the handshake: a TLS alert (from OpenSSL-based
   * servers: certificate_required, unknown_ca, certificate_expired...) or, with `refusalHint`,
   * a close before any byte within the handshake timeout. Said at warn with the reason, instead
   * of only a debug line about a closed connection.
   */
  function watchRefusal(upstream: TLSSocket, f: Record<string, unknown>, g: <A extends unknown[]>(fn: (...args: A) => unknown) => (...args: A) => void): void {
    const secureAt = performance.now();
    let heard = false;
    upstream.once('data', () => (heard = true));
    upstream.once('error', g((err: Error) => {
      const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_([A-Z_]+)$/.exec(reason(err));
      if (!alert || heard) return;
      stats.handshakeFailures++;
      ctx.warnHandshake(
        { ...f, remote, reason: reason(err) },
        `${label} the remote peer refused the connection after the handshake with TLS alert "${alert[1]!.toLowerCase().replace(/_/g, ' ')}"${refusalHint ? `: ${refusalHint}` : ''}; closing the local connection`,
      );
    }));
    if (!refusalHint) return;
    upstream.once('end', g(() => {
      const ms = performance.now() - secureAt;
      if (heard || ms > timeouts.handshakeMs) return;
      ctx.warnHandshake(
        { ...f, remote, ms: Math.round(ms) },
        `${label} the remote peer closed the connection right after the handshake without sending anything: a tee-init server does that when it refuses us (its log says why, 'tls client refused'); ${refusalHint}`,
      );
    }));
  }
}
