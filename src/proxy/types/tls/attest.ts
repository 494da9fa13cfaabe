// Attested TLS (docs/design.md, "Attested channels"): the listener proves what it runs, bound
// to the connection. A client that offers the ALPN protocol `tee-attest/1` gets it selected;
// right after the handshake the server sends a 4-byte big-endian length N (N ≤ 65536) and N
// bytes of a Confidential Space token whose nonces hold base64url(exporter) of that very
// connection — `exportKeyingMaterial(32, "EXPORTER-tee-init-attestation")`, no context
// (RFC 8446 §7.5) — then proxies as usual. Both ends compute the exporter from their own TLS
// state, so a token relayed from another connection (or fetched by a man in the middle, who
// holds two different sessions) does not match.
import type { JWTPayload } from 'jose';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { TokenAttester } from '../../../attest/attester.ts';
import type { AttestationVerifier } from '../../../attest/verify-token.ts';

export const ATTEST_ALPN = 'tee-attest/1';
export const EXPORTER_LABEL = 'EXPORTER-tee-init-attestation';
export const MAX_TOKEN_BYTES = 65_536;

/** base64url (no padding) of the connection's exporter value: 43 characters, within the launcher's 10–74. */
export function bindingNonce(socket: TLSSocket): string {
  // No context: RFC 8446 §7.5 treats an absent context as empty; Node's type wants the argument.
  return socket.exportKeyingMaterial(32, EXPORTER_LABEL, undefined as unknown as Buffer).toString('base64url');
}

export interface AttestServer {
  /** Sends the framed token for `socket`; resolves once written (the caller then proxies). */
  prove(socket: TLSSocket): Promise<void>;
  /** A token for the http: endpoint: this connection's exporter, plus the client's nonce if any. */
  token(socket: TLSSocket, extraNonce?: string): Promise<string>;
  /** Counters for /metrics. */
  stats(): { attestations_total: number; attestation_failures_total: number };
}

export function attestServer(attester: TokenAttester, audience: string, type: 'OIDC' | 'PKI'): AttestServer {
  const n = { attestations_total: 0, attestation_failures_total: 0 };
  const token = async (socket: TLSSocket, extra?: string) => {
    try {
      const jwt = await attester.token({ audience, type, nonces: [bindingNonce(socket), ...(extra === undefined ? [] : [extra])] });
      n.attestations_total++;
      return jwt;
    } catch (err) {
      n.attestation_failures_total++;
      throw err;
    }
  };
  return {
    token,
    stats: () => ({ ...n }),
    async prove(socket) {
      const jwt = Buffer.from(await token(socket), 'utf8');
      if (jwt.length > MAX_TOKEN_BYTES) throw new Error(`the launcher's token is ${jwt.length} bytes, more than the ${MAX_TOKEN_BYTES} a frame carries`);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(jwt.length);
      socket.write(Buffer.concat([head, jwt]));
    },
  };
}

/**
 * Client side: reads the frame from `socket` (whatever follows it is put back for the proxy)
 * and verifies it against this connection. Rejects with the reason; the caller's handshake
 * deadline bounds the wait.
 */
export async function readAndVerify(socket: TLSSocket, verify: AttestationVerifier): Promise<JWTPayload> {
  if (socket.alpnProtocol !== ATTEST_ALPN) {
    throw new Error(`the server did not select ALPN ${ATTEST_ALPN}: it does not attest (is attest: set on its listener?)`);
  }
  const jwt = await readFrame(socket);
  return verify(jwt, bindingNonce(socket));
}

function readFrame(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen: Buffer = Buffer.alloc(0);
    const done = (err: Error | undefined, value?: string, rest?: Buffer) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      if (rest?.length) socket.unshift(rest);
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      if (seen.length < 4) return;
      const n = seen.readUInt32BE(0);
      if (n === 0 || n > MAX_TOKEN_BYTES) return done(new Error(`the server's attestation frame announces ${n} bytes (1–${MAX_TOKEN_BYTES} allowed)`));
      if (seen.length < 4 + n) return;
      done(undefined, seen.subarray(4, 4 + n).toString('utf8'), seen.subarray(4 + n));
    };
    const onEnd = () => done(new Error('the server closed before sending its attestation token'));
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}
