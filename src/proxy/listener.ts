// The contract between the run stage and the listener types (docs/listeners.md, `listeners:`): a listener
// is a unit whose work happens in the init's process (or its worker threads). Each type (psk,
// tls, tunnel, http-proxy, metadata) is one entry of the table in ./types/index.ts.
import type { z } from 'zod';
import type { TokenAttester } from '../attest/attester.ts';
import type { TokenSources } from '../credentials/token-types.ts';
import type { Log } from '../lib/log.ts';

export interface HostPort {
  host: string;
  port: number;
}

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

/** One listener type: its config schema and how to start it. */
export interface ListenerType<C extends { type: string } = { type: string }> {
  readonly type: C['type'];
  /** Strict schema of this type's config object, `type` and the common fields included. */
  readonly schema: z.ZodType<C>;
  /** Secret names the config uses (each must be configured; checked by `tee-init check`). */
  secrets(config: C): string[];
  /**
   * Secrets of which any `need` of `names` will do (t-of-n shares): the fetch stage skips one
   * that cannot be read, with a warning, and the boot fails only when fewer than `need` arrive.
   * A skipped secret reads as empty. `what` names the group in messages (after the field).
   */
  quorums?(config: C): { what: string; names: string[]; need: number }[];
  /** Credentials names it mints tokens with (each must be configured). */
  credentials(config: C): string[];
  /**
   * Why a connection to this listener is served as the workload (it presents the workload's
   * key, client certificate or token to a remote peer), or undefined. Such a listener must
   * listen on loopback: the config check refuses any other address (checkListenerReferences).
   */
  actsForWorkload?(config: C): string | undefined;
  /**
   * The address that must accept TCP before the listener opens (what it fronts), if any. The
   * caller waits for it before start(); start() does not wait again.
   */
  upstream(config: C): HostPort | undefined;
  /**
   * Checks the secret material (keys combine, certificate matches key) before any program
   * starts, so a bad secret fails the boot with its own exit code. Wipes what it derives.
   */
  check?(config: C, secret: (name: string) => Buffer, field: string): void | Promise<void>;
  start(config: C, env: ListenerEnv): Promise<ListenerHandle>;
  /**
   * Every type serves from `workers:` threads (0: the init's thread); this is the default count
   * when `workers:` is not set. Undefined: one per core, at most 4. start() runs there with
   * its config, its secrets (copies, by message) and tokens asked of the init's thread.
   */
  readonly defaultWorkers?: number;
  /**
   * Variables for the program's environment once the listener is bound at `address` (e.g.
   * HTTP_PROXY for an egress proxy), or {} when the config does not ask for them. Optional.
   */
  childEnv?(config: C, address: HostPort): Record<string, string>;
}
