// Server modes: mutual TLS in (strict), or mutual TLS and plaintext on the same port
// (permissive), plain TCP or HTTP/1.1 out to the program.
//
// One net.Server accepts; TLS connections are handed to a tls.Server that never listens (it
// wraps the socket, as it would its own). That lets permissive mode look at the first bytes
// before deciding, and lets one deadline cover a connection from accept to the end of its
// handshake, however slowly a client trickles its bytes in.
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { type Fields, forwardToUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason } from '../../connection.ts';
import type { LimitedWarn } from '../../log-limit.ts';
import type { TlsMaterial } from './context.ts';
import type { HttpForwarder } from './http.ts';
import { identityFields, type PeerIdentity, peerIdentity, type PeerRule, ruleMatches } from './identity.ts';
import { sniff } from './sniff.ts';

export interface ServerModeOptions {
  permissive: boolean;
  material: () => TlsMaterial;
  clients: readonly PeerRule[] | undefined;
  /** Set with `http:`: requests go through it instead of a byte pipe. */
  http: HttpForwarder | undefined;
  /** Rate-limited lines for refused clients and plaintext ones. */
  warnRefused: LimitedWarn;
  warnPlaintext: LimitedWarn;
}

export interface TlsServers {
  /** The one that listens. */
  listener: Server;
  /** Swaps the TLS context for new connections. */
  setMaterial(m: TlsMaterial): void;
}

export function createTlsServers(o: ServerModeOptions, ctx: ModeContext): TlsServers {
  const { stats, timeouts, label } = ctx;
  const deadlines = new WeakMap<Socket, NodeJS.Timeout>();
  // Raw sockets the deadline destroyed: counted and logged once, by the deadline.
  const expired = new WeakSet<Socket>();
  // The TCP socket a TLSSocket wraps (Node keeps it as _parent); undefined if that ever changes,
  // and then tls.Server's own handshakeTimeout still bounds the handshake.
  const rawOf = (tls: TLSSocket) => (tls as TLSSocket & { _parent?: Socket })._parent;

  const tlsServer = createTlsServer({
    ...o.material().options,
    requestCert: true,
    // Checked in secureConnection instead, so that a refused client is logged with its identity
    // and reason; nothing is forwarded before that check.
    rejectUnauthorized: false,
    allowHalfOpen: true,
    // A backstop: the deadline set at accept is what bounds a handshake.
    handshakeTimeout: timeouts.handshakeMs,
  });

  tlsServer.on('tlsClientError', (err, socket) => {
    // Node leaves the socket open on a handshake timeout once this event has a listener.
    socket.destroy();
    const raw = rawOf(socket);
    if ((raw && expired.has(raw)) || ctx.probe(socket, err)) return;
    stats.handshakeFailures++;
    ctx.warnHandshake({ peer: peerOf(socket), reason: reason(err) }, `${label} handshake failed`);
  });

  tlsServer.on('secureConnection', (client: TLSSocket) => {
    client.allowHalfOpen = true; // half-close reaches the program from here on
    const raw = rawOf(client);
    if (raw) clearTimeout(deadlines.get(raw));
    const t0 = performance.now();
    const cert = client.getPeerX509Certificate();
    const id = cert ? peerIdentity(cert) : undefined;
    const fields: Fields = { peer: peerOf(client), ...identityFields(id) };
    const refusal = !cert ? 'no client certificate'
      : !client.authorized ? `certificate not trusted (${String(client.authorizationError)})`
      : o.clients && !o.clients.some((r) => ruleMatches(r, id!)) ? 'not in the clients allow-list'
      : undefined;
    if (refusal) {
      stats.clientsRefused++;
      o.warnRefused({ ...fields, reason: refusal }, `${label} client refused`);
      client.destroy();
      return;
    }
    serveClient(client, client, id, fields, t0);
  });

  function serveClient(socket: Socket, secure: TLSSocket | undefined, id: PeerIdentity | undefined, fields: Fields, t0: number): void {
    if (o.http) o.http.serve(socket, secure, id, fields, t0);
    else forwardToUpstream(ctx, socket, secure, fields, t0);
  }

  // The TLSSocket takes allowHalfOpen from the socket it wraps: off until the handshake is done
  // (then on, in secureConnection), so that a peer that sends its FIN before a byte (a health
  // check) frees its slot at once instead of holding it until the handshake deadline.
  const toTls = (raw: Socket) => {
    raw.allowHalfOpen = false;
    tlsServer.emit('connection', raw);
  };

  const listener = createTcpServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS }, (raw) => {
    const t0 = performance.now();
    // From accept to the end of the handshake (or, in permissive mode, to the first plaintext bytes).
    deadlines.set(raw, setTimeout(() => {
      expired.add(raw);
      stats.handshakeFailures++;
      ctx.warnHandshake({ peer: peerOf(raw), reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' }, `${label} handshake failed`);
      raw.destroy();
    }, timeouts.handshakeMs));
    raw.once('close', () => {
      clearTimeout(deadlines.get(raw));
      // Gone before its first byte, and not by our deadline: a health check (counted once).
      if (!expired.has(raw)) ctx.probe(raw);
    });
    raw.on('error', () => {}); // reported by whoever handles the connection next, or moot
    if (!o.permissive) {
      toTls(raw);
      return;
    }
    sniff(raw, (kind) => {
      if (kind === 'tls') {
        toTls(raw);
        return;
      }
      clearTimeout(deadlines.get(raw));
      stats.plaintext++;
      const fields = { peer: peerOf(raw), plaintext: true };
      o.warnPlaintext(fields, `${label} plaintext client on a permissive port`);
      serveClient(raw, undefined, undefined, fields, t0);
    }, () => raw.destroy());
  });

  return {
    listener,
    setMaterial: (m) => tlsServer.setSecureContext(m.options),
  };
}
