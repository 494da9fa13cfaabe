// Counters of one proxy. "Client" is the side that connects to `listen` (TLS-PSK in server
// mode, plain TCP in client mode); "upstream" is what the proxy connects to.
export interface PskStats {
  /** Accepted connections still open (in handshake, connecting upstream or piping). */
  active: number;
  /** Connections accepted since start (not counting those refused by maxConnections). */
  total: number;
  /** Connections that completed the TLS handshake and were connected upstream. */
  established: number;
  /** TLS handshakes that failed or timed out (wrong key, unknown identity, bad suite, ...). */
  handshakeFailures: number;
  /** Upstream TCP connections that failed or timed out (backend down). */
  upstreamFailures: number;
  /** Connections refused because maxConnections were open. */
  rejected: number;
  /** Piped connections closed by the idle timeout. */
  idleTimeouts: number;
  /** Plaintext bytes from the client to upstream. */
  bytesFromClient: number;
  /** Plaintext bytes from upstream to the client. */
  bytesToClient: number;
}

export function emptyStats(): PskStats {
  return {
    active: 0, total: 0, established: 0, handshakeFailures: 0, upstreamFailures: 0,
    rejected: 0, idleTimeouts: 0, bytesFromClient: 0, bytesToClient: 0,
  };
}
