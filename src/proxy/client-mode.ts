// Client mode of any TLS type: plain TCP in on a local listener, TLS out to a remote peer
// (another TEE's init in server mode, stunnel, any TLS server). The type supplies how to
// connect (PSK callback, or certificate and verification).
import { createServer, type Server, type Socket } from 'node:net';
import { type ConnectionOptions, connect } from 'node:tls';
import { formatHostPort } from './address.ts';
import { type FaultSink, guard } from './boundary.ts';
import { holdUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason, startPiping } from './connection.ts';

/**
 * `connectOptions()` is called per connection (it reads the current context, so a reload
 * applies to new connections); `fields` go on every log line of the connection. Every handler
 * runs inside guard(): a throw ends that connection (both sockets) through `fault`.
 */
export function createClientModeServer(ctx: ModeContext, connectOptions: () => ConnectionOptions, fault: FaultSink, fields: Record<string, unknown> = {}): Server {
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
    const hold = holdUpstream(client, upstream, timeouts.handshakeMs, () =>
      Object.assign(new Error(`no TLS session within ${timeouts.handshakeMs} ms`), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }),
    );
    upstream.once('connect', g(() => {
      tcpUp = true;
      upstream.setNoDelay(true);
      upstream.setKeepAlive(true, KEEPALIVE_MS);
    }));
    upstream.once('secureConnect', g(() => {
      if (!hold.settle()) return;
      startPiping(ctx, client, upstream, upstream, f, t0);
    }));
    upstream.on('error', g((err: Error) => {
      if (hold.settled) return;
      hold.cancel();
      if (tcpUp) stats.handshakeFailures++;
      else stats.upstreamFailures++;
      (tcpUp ? ctx.warnHandshake : ctx.warnUpstream)(
        { ...f, remote, reason: reason(err) },
        tcpUp ? `${label} handshake with the remote peer failed; closing the local connection` : `${label} remote peer unreachable; closing the local connection`,
      );
      client.end(() => client.destroy());
    }));
  }));
}
