// Client mode: plaintext in on a local port, mutual TLS out to a remote peer: our certificate,
// the server's verified against the `ca` secret, and its name (or `servers:` rules) checked.
import { X509Certificate } from 'node:crypto';
import type { Server } from 'node:net';
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { FaultSink } from '../../boundary.ts';
import { createClientModeServer } from '../../client-mode.ts';
import type { ModeContext } from '../../connection.ts';
import { ATTEST_ALPN } from './attest.ts';
import type { TlsMaterial } from './context.ts';
import { identityFields, peerIdentity, type PeerRule, ruleMatches } from './identity.ts';

export interface ClientModeOptions {
  material: () => TlsMaterial;
  serverName: string | undefined;
  servers: readonly PeerRule[] | undefined;
  /** Set with verify.attestation: reads and checks the server's token; nothing is forwarded before. */
  verify: ((upstream: TLSSocket) => Promise<unknown>) | undefined;
  fault: FaultSink;
}

export function createTlsClient(o: ClientModeOptions, ctx: ModeContext): Server {
  const name = o.serverName ?? ctx.upstream.host;
  const check = (_host: string, cert: PeerCertificate): Error | undefined => {
    // Node calls this from inside the handshake, where a throw would escape every handler: a
    // certificate this cannot read fails that handshake instead.
    try {
      if (!o.servers) return checkServerIdentity(name, cert);
      const id = peerIdentity(new X509Certificate(cert.raw));
      if (o.servers.some((r) => ruleMatches(r, id))) return undefined;
      return Object.assign(new Error(`server certificate ${JSON.stringify(identityFields(id))} matches no servers: rule`), { code: 'ERR_TLS_SERVER_NOT_ALLOWED' });
    } catch {
      return Object.assign(new Error('server certificate could not be read'), { code: 'ERR_TLS_CERT_UNREADABLE' });
    }
  };
  return createClientModeServer(ctx, () => ({
    secureContext: o.material().context,
    ...(o.serverName ? { servername: o.serverName } : {}),
    rejectUnauthorized: true,
    checkServerIdentity: check,
    ...(o.verify ? { ALPNProtocols: [ATTEST_ALPN] } : {}),
  }), {
    fault: o.fault,
    fields: { serverName: name },
    refusalHint: 'check that our certificate (tls.cert) is signed by a CA the remote peer trusts, valid now, and in its clients: list',
    verifyPeer: o.verify,
  });
}
