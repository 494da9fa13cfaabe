// Server modes: mutual TLS in (strict), or mutual TLS and plaintext on the same port
// (permissive), plain TCP or HTTP/1.1 out to the program.
//
// One net.Server accepts; TLS connections are handed to a tls.Server that never listens (it
// wraps the socket, as it would its own). That lets permissive mode look at the first bytes
// before deciding, and lets one deadline cover a connection from accept to the end of its
// handshake, however slowly a client trickles its bytes in.
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { type FaultSink, guard } from '../../boundary.ts';
import { type Fields, forwardToUpstream, KEEPALIVE_MS, type ModeContext, peerOf, reason, startPiping } from '../../connection.ts';
import type { LimitedWarn } from '../../../lib/log-limit.ts';
import type { TlsMaterial } from './context.ts';
import type { HttpForwarder } from './http.ts';
import { identityFields, type PeerIdentity, peerIdentity, type PeerRule, ruleMatches } from './identity.ts';
import { ATTEST_ALPN, type AttestServer } from './attest.ts';
import { offeredAlpn } from './client-hello.ts';
import { peek, type Sniffed, sniff } from './sniff.ts';

export interface ServerModeOptions {
  permissive: boolean;
  material: () => TlsMaterial;
  clients: readonly PeerRule[] | undefined;
  /** Set with `http:`: requests go through it instead of a byte pipe. */
  http: HttpForwarder | undefined;
  /** Set with `attest:`: clients offering tee-attest/1 get a token bound to their connection. */
  attest: AttestServer | undefined;
  /** Raw mode: ALPN protocols the program speaks, selected when a client offers one (h2 for gRPC). */
  alpn: readonly string[] | undefined;
  /** Rate-limited lines for refused clients and plaintext ones (and failed attestations). */
  warnRefused: LimitedWarn;
  warnPlaintext: LimitedWarn;
  /** Ends a connection whose handling threw (../../boundary.ts). */
  fault: FaultSink;
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
  // A throw in a handler ends that connection (TLS side and TCP side), never the listener.
  const onRawFault = (err: unknown, raw: Socket) => o.fault(err, { peer: peerOf(raw) }, raw);
  const onTlsFault = (err: unknown, tls: TLSSocket) => o.fault(err, { peer: peerOf(tls) }, tls, rawOf(tls));

  // One TLS server per protocol it may select, all with one context: the one without ALPN (as
  // before) for clients that offer nothing we select, one selecting tee-attest/1 (attest:), one
  // per protocol of `alpn:` (raw mode: what the program speaks, h2 for gRPC). Node's server can
  // only select or refuse, not "not answer": client-hello.ts says why the offer is read first.
  const makeTlsServer = (protocol: string | undefined) => {
    const server = createTlsServer({
      ...o.material().options,
      requestCert: true,
      // Checked in secureConnection instead, so that a refused client is logged with its identity
      // and reason; nothing is forwarded before that check.
      rejectUnauthorized: false,
      allowHalfOpen: true,
      // A backstop: the deadline set at accept is what bounds a handshake.
      handshakeTimeout: timeouts.handshakeMs,
      ...(protocol ? { ALPNProtocols: [protocol] } : {}),
    });
    server.on('tlsClientError', guard((err, _e: Error, socket: TLSSocket) => onTlsFault(err, socket), onTlsClientError));
    server.on('secureConnection', guard(onTlsFault, onSecureConnection));
    return server;
  };

  function onTlsClientError(err: Error, socket: TLSSocket): void {
    // Node leaves the socket open on a handshake timeout once this event has a listener.
    socket.destroy();
    const raw = rawOf(socket);
    if ((raw && expired.has(raw)) || ctx.probe(socket, err)) return;
    stats.handshakeFailures++;
    ctx.warnHandshake({ peer: peerOf(socket), reason: reason(err) }, `${label} handshake failed`);
  }

  function onSecureConnection(client: TLSSocket): void {
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
      refuse(client, refusal);
      return;
    }
    if (o.attest && client.alpnProtocol === ATTEST_ALPN) {
      // The token goes first; bytes the client sent meanwhile wait in the socket, unread.
      const fail = (err: unknown) => onTlsFault(err, client);
      o.attest.prove(client).then(
        guard(fail, () => serveClient(client, client, id, fields, t0)),
        guard<[Error]>(fail, (err) => {
          o.warnRefused({ ...fields, reason: reason(err) }, `${label} could not attest this connection; closing it`);
          client.destroy();
        }),
      );
      return;
    }
    serveClient(client, client, id, fields, t0);
  }

  const tlsServer = makeTlsServer(undefined);
  // In the order they are preferred: attestation first (a client that asks for it wants it).
  const selectable = [...(o.attest ? [ATTEST_ALPN] : []), ...(o.alpn ?? [])];
  const byProtocol = new Map(selectable.map((p) => [p, makeTlsServer(p)]));
  // Hands a raw connection to the TLS server that fits what its ClientHello offers. The TLSSocket
  // takes allowHalfOpen from the socket it wraps: off until the handshake is done (then on, in
  // secureConnection), so that a peer that sends its FIN before a byte (a health check) frees
  // its slot at once instead of holding it until the handshake deadline.
  const toTls = (raw: Socket) => {
    raw.allowHalfOpen = false;
    if (byProtocol.size === 0) return void tlsServer.emit('connection', raw);
    peek(raw, offeredAlpn, guard((err) => onRawFault(err, raw), (offered: string[]) => {
      const chosen = selectable.find((p) => offered.includes(p));
      (chosen === undefined ? tlsServer : byProtocol.get(chosen)!).emit('connection', raw);
    }), () => raw.destroy());
  };

  /**
   * Tells a refused client why, as far as Node lets a server: its TLS cannot send a certificate
   * alert (unknown_ca, certificate_required...) after the handshake, because its verify callback
   * accepts every chain and leaves the check to this code. So: in `http:` mode a 403 whose body
   * is the reason (curl and browsers show it), and always close_notify rather than a reset
   * (a tee-init in client mode logs that close as a likely refusal). What the client sends
   * meanwhile is read and dropped, so that the close does not reset the answer away; the
   * handshake timeout bounds how long a refused client is held.
   */
  function refuse(client: TLSSocket, why: string): void {
    const timer = setTimeout(() => client.destroy(), timeouts.handshakeMs);
    client.once('close', () => clearTimeout(timer));
    client.on('error', () => client.destroy());
    client.resume();
    if (!o.http) {
      client.end();
      return;
    }
    const body = `client certificate refused: ${why}\n`;
    client.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }

  function serveClient(socket: Socket, secure: TLSSocket | undefined, id: PeerIdentity | undefined, fields: Fields, t0: number): void {
    if (o.http) o.http.serve(socket, secure, id, fields, t0);
    else {
      forwardToUpstream(ctx, socket, secure, fields, t0, guard(
        (err, upstream: Socket) => o.fault(err, fields, socket, upstream, secure && rawOf(secure)),
        (upstream: Socket) => startPiping(ctx, socket, upstream, secure, fields, t0),
      ));
    }
  }

  const listener = createTcpServer({ allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS }, guard(onRawFault, (raw: Socket) => {
    const t0 = performance.now();
    // From accept to the end of the handshake (or, in permissive mode, to the first plaintext bytes).
    deadlines.set(raw, setTimeout(guard((err) => onRawFault(err, raw), () => {
      expired.add(raw);
      stats.handshakeFailures++;
      ctx.warnHandshake({ peer: peerOf(raw), reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' }, `${label} handshake failed`);
      raw.destroy();
    }), timeouts.handshakeMs));
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
    sniff(raw, guard((err) => onRawFault(err, raw), (kind: Sniffed) => {
      if (kind === 'tls') {
        toTls(raw);
        return;
      }
      clearTimeout(deadlines.get(raw));
      stats.plaintext++;
      const fields = { peer: peerOf(raw), plaintext: true };
      o.warnPlaintext(fields, `${label} plaintext client on a permissive port`);
      serveClient(raw, undefined, undefined, fields, t0);
    }), () => raw.destroy());
  }));

  return {
    listener,
    setMaterial: (m) => {
      // ALPN is the server's, not the context's: every server takes the new context.
      for (const server of [tlsServer, ...byProtocol.values()]) server.setSecureContext(m.options);
    },
  };
}
