// A listener type's config side (docs/listeners.md `listeners:`): its schema and what the config
// check, the plan and the boot read from a listener's config without starting it. Pure: no
// secret bytes, no sockets. The runtime side (the material check, start()) is ListenerType in
// src/proxy/listener.ts, which extends this one.
import type { z } from 'zod';
import type { HostPort } from '../../lib/address.ts';

export interface ListenerConfigType<C extends { type: string } = { type: string }> {
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
