// Fault injection shared by the fakes: rules set at any time on a running fake, matched per API
// and optionally per secret, consumed request by request.
import type { ServerResponse } from 'node:http';

export interface Fault {
  /** Answer with this status instead of handling the request. */
  status?: number;
  /** Body for `status`: a string is sent as is, anything else as JSON. Default: the API's error shape. */
  body?: unknown;
  /** Apply to the first N matching requests, then behave. Default: until cleared. */
  times?: number;
  /** Delay before answering (the fault's status, or the normal answer). */
  latencyMs?: number;
  /** Never answer; the socket stays open until the client gives up or the fake closes. */
  hang?: boolean;
  /** Answer normally but with a wrong payload.dataCrc32c (Secret Manager only). */
  corruptCrc?: boolean;
  /** Destroy the socket without answering. */
  dropConnection?: boolean;
}

export interface FaultMatch {
  /** Only requests for this secret (`projects/P/secrets/S`, as in the world, or as requested). */
  secret?: string;
}

interface Rule<Api extends string> {
  api: Api;
  secret?: string;
  fault: Fault;
  remaining: number;
}

export class FaultTable<Api extends string> {
  #rules: Rule<Api>[] = [];

  /** Sets the rule for (api, secret), replacing the previous one. */
  set(api: Api, fault: Fault, match: FaultMatch = {}): void {
    this.#rules = this.#rules.filter((r) => !(r.api === api && r.secret === match.secret));
    this.#rules.push({ api, secret: match.secret, fault, remaining: fault.times ?? Infinity });
  }

  clear(api?: Api): void {
    this.#rules = api === undefined ? [] : this.#rules.filter((r) => r.api !== api);
  }

  /**
   * The fault for one request, counted against its `times`. A rule for one of the request's
   * secret names beats an API-wide rule.
   */
  take(api: Api, secretNames: readonly string[] = []): Fault | undefined {
    const rule =
      this.#rules.find((r) => r.api === api && r.secret !== undefined && secretNames.includes(r.secret)) ??
      this.#rules.find((r) => r.api === api && r.secret === undefined);
    if (!rule) return undefined;
    if (--rule.remaining <= 0) this.#rules = this.#rules.filter((r) => r !== rule);
    return rule.fault;
  }
}

export type FaultKind = 'latency' | 'status' | 'hang' | 'drop' | 'corruptCrc';

/**
 * Carries out the transport part of a fault: waits out the latency, then drops, hangs or
 * answers with the fault's status. Returns what it did; `answered` false means the request
 * should be handled normally (latency and corruptCrc only).
 */
export async function applyFault(
  fault: Fault,
  res: ServerResponse,
  wait: (ms: number) => Promise<boolean>,
  send: (status: number, body: unknown) => void,
): Promise<{ answered: boolean; kind: FaultKind }> {
  if (fault.latencyMs !== undefined && !(await wait(fault.latencyMs))) return { answered: true, kind: 'hang' };
  if (fault.dropConnection) {
    res.socket?.destroy();
    return { answered: true, kind: 'drop' };
  }
  if (fault.hang) return { answered: true, kind: 'hang' };
  if (fault.status !== undefined) {
    send(fault.status, fault.body);
    return { answered: true, kind: 'status' };
  }
  return { answered: false, kind: fault.corruptCrc ? 'corruptCrc' : 'latency' };
}
