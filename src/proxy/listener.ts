// The contract between the run stage and the listener types (docs/listeners.md, `listeners:`): a listener
// is a unit whose work happens in the init's process (or its worker threads). Each type (psk,
// tls, tunnel, http-proxy, metadata) is one entry of the table in ./types/index.ts.
import type { TokenAttester } from '../attest/attester.ts';
import type { ListenerConfigType } from '../config/listeners/type.ts';
import type { TokenSources } from '../credentials/token-types.ts';
import type { HostPort } from '../lib/address.ts';
import type { Log } from '../lib/log.ts';

export type { HostPort };

/** What the init hands a listener type when it starts one. */
export interface ListenerEnv {
  /** The listener's name: its key under `listeners:` (`psk` for the `psk:` shorthand). */
  name: string;
  /** Already bound with `{ listener: name }`. */
  log: Log;
  /**
   * Secret bytes by config name, as currently materialized (after a rotation: the new ones).
   * The listener copies what it keeps and wipes its copies on close/reload. Throws for a name
   * that is not configured (the config check makes that a bug, not a user error).
   */
  secret(name: string): Buffer;
  /** Tokens minted with the configured credentials (src/credentials/token-types.ts). */
  tokens: TokenSources;
  /** Aborts start-up (e.g. the wait for the upstream) when the init stops first. */
  signal: AbortSignal;
  /** The config path of this listener for messages: `listeners.NAME`, or `psk` for the shorthand. */
  field?: string;
  /** Tokens bound to a connection (`attest:` on a tls listener), from the launcher; one bound per init. */
  attester?: TokenAttester | undefined;
  /** endpoints.jwks: where peers' attestation tokens are verified (`verify.attestation`). */
  jwks?: string | undefined;
  /** Bind with SO_REUSEPORT: set when worker threads serve the port (and a replacement takes it over). */
  reusePort?: boolean;
}

export interface ListenerHandle {
  /** The address actually bound (the real port when `listen` asked for port 0). */
  readonly address: HostPort;
  /** Counters and gauges for /metrics, by metric-style name (counters end in `_total`). */
  stats(): Readonly<Record<string, number>>;
  /**
   * Rotation: re-read the secrets through env.secret() and use them for new connections; open
   * connections keep theirs. Rejects, keeping the old material, when the new one is unusable.
   */
  reload(): Promise<void>;
  /** Stops listening, closes every connection, wipes key copies. Idempotent. */
  close(): Promise<void>;
}

/**
 * One listener type: its config side (src/config/listeners/, what the config check reads) and
 * what the run stage adds: the check of its secret material and start().
 */
export interface ListenerType<C extends { type: string } = { type: string }> extends ListenerConfigType<C> {
  /**
   * Checks the secret material (keys combine, certificate matches key) before any program
   * starts, so a bad secret fails the boot with its own exit code. Wipes what it derives.
   */
  check?(config: C, secret: (name: string) => Buffer, field: string): void | Promise<void>;
  start(config: C, env: ListenerEnv): Promise<ListenerHandle>;
}
