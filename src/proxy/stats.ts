// Counters of one listener. "Client" is the side that connects to `listen` (TLS in server
// mode, plain TCP in client mode); "upstream" is what the proxy connects to.
export interface ProxyStats {
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
  /** Connections that closed before sending a byte (a load balancer's health check, `nc -z`): not failures. */
  probes: number;
  /** Connections ended by a fault in their handling (src/proxy/boundary.ts): a bug contained. */
  faults: number;
  /** Piped connections closed by the idle timeout. */
  idleTimeouts: number;
  /** Clients whose certificate the `clients:` allow-list refused (tls). */
  clientsRefused: number;
  /** Clients that came in plaintext on a permissive port (tls). */
  plaintext: number;
  /** Plaintext bytes from the client to upstream. */
  bytesFromClient: number;
  /** Plaintext bytes from upstream to the client. */
  bytesToClient: number;
}

export function emptyStats(): ProxyStats {
  return {
    active: 0, total: 0, established: 0, handshakeFailures: 0, upstreamFailures: 0,
    rejected: 0, probes: 0, faults: 0, idleTimeouts: 0, clientsRefused: 0, plaintext: 0, bytesFromClient: 0, bytesToClient: 0,
  };
}

/** The counters as /metrics names (listener.ts: counters end in `_total`). */
export function metrics(s: ProxyStats): Record<string, number> {
  return {
    connections_active: s.active,
    connections_total: s.total,
    connections_established_total: s.established,
    handshake_failures_total: s.handshakeFailures,
    upstream_failures_total: s.upstreamFailures,
    connections_rejected_total: s.rejected,
    probes_total: s.probes,
    connection_faults_total: s.faults,
    idle_timeouts_total: s.idleTimeouts,
    clients_refused_total: s.clientsRefused,
    plaintext_connections_total: s.plaintext,
    bytes_from_client_total: s.bytesFromClient,
    bytes_to_client_total: s.bytesToClient,
  };
}
