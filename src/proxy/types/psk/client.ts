// Client mode: plain TCP in on a local listener, TLS-PSK out to a remote peer (another TEE's
// init in server mode, stunnel, any TLS-PSK server).
import type { Server } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { FaultSink } from '../../boundary.ts';
import { createClientModeServer } from '../../client-mode.ts';
import type { ModeContext } from '../../connection.ts';
import { type PskTlsOptions, versionOptions } from './tls-options.ts';

export interface ClientModeOptions {
  identity: string;
  /** identity → key, read at each handshake (a rekey swaps it); the caller keeps the buffers alive. */
  keys: ReadonlyMap<string, Buffer>;
  tls: PskTlsOptions;
  fault: FaultSink;
}

export function createPskClient({ identity, keys, tls, fault }: ClientModeOptions, ctx: ModeContext): Server {
  // One context for all connections: tls.connect would otherwise build a new one (an SSL_CTX)
  // per connection, which costs more than the rest of the handshake setup.
  const secureContext = createSecureContext(versionOptions(tls));
  return createClientModeServer(ctx, () => ({
    secureContext,
    // Called once with hint null for a TLS 1.3 ClientHello, again with the server's hint if 1.2
    // is chosen: the answer is the same. No certificate is involved, so nothing to check.
    pskCallback: () => ({ psk: keys.get(identity)!, identity }),
    checkServerIdentity: () => undefined,
  }), { fault, fields: { identity } });
}
