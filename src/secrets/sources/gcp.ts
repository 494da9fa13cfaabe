// Secret Manager: the one call tee-init makes, `GET /v1/{name}:access` (REST, HTTP/1.1 JSON),
// sent through the identity's google-auth-library client (its token, renewed when it expires): the
// same request in a TEE and against the loopback fakes; only the endpoint differs. Not through
// @google-cloud/secret-manager: its google-gax and protobufjs cost ~10 MiB of the init's RSS
// for this one request (docs/BENCHMARKS.md, "Session 3: memory").
import type { Identity } from '../../credentials/identities.ts';
import { UnusableAnswer } from '../../lib/classify.ts';

export interface AccessedVersion {
  data: Buffer;
  /** The resolved version name (projects/P/secrets/S/versions/N), also for `latest`. */
  name: string;
  crc32c: string | undefined;
}

const REGIONAL = /^projects\/[^/]+\/locations\/([^/]+)\//;
const VERSION_NAME = /^projects\/[\x21-\x7e]{1,500}$/;

/** Where `ref` is served: the override when given, else the global or the regional endpoint. */
export function endpointFor(ref: string, override: string | undefined): URL {
  if (override) return new URL(override);
  const region = REGIONAL.exec(ref)?.[1];
  return new URL(region ? `https://secretmanager.${region}.rep.googleapis.com` : 'https://secretmanager.googleapis.com');
}

/** The URL a read of `ref` goes to, for messages (the one a 3 a.m. reader can test with curl). */
export function accessUrl(ref: string, override: string | undefined): string {
  return `${endpointFor(ref, override).origin}/v1/${ref}:access`;
}

// google.rpc.Code by its name, as a Google API's JSON error body spells it (`error.status`).
const RPC_CODE: Record<string, number> = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/**
 * Secret Manager's answer to a failed call: its message, its google.rpc code (when the body names
 * one) and the HTTP status, the shape src/lib/classify.ts reads (as google-gax's GoogleError was):
 * FAILED_PRECONDITION (a disabled version, HTTP 400) is "not usable", not "bad request".
 */
export class SecretManagerError extends Error {
  override readonly name = 'SecretManagerError';
  readonly code: number | undefined;
  readonly httpStatusCode: number | undefined;
  constructor(message: string, code: number | undefined, httpStatusCode: number | undefined, cause: unknown) {
    super(message, { cause });
    this.code = code;
    this.httpStatusCode = httpStatusCode;
  }
}

interface Gaxiosish {
  code?: unknown;
  response?: { status?: unknown; data?: unknown };
}

/** JSON.parse that says "not JSON" with undefined (a proxy's HTML page, a truncated body). */
function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A failed request's error, with Secret Manager's own account of it when its body has one. */
function decodeFailure(err: unknown, timeoutMs: number): unknown {
  // gaxios's own timeout (the request is aborted, its socket freed): retried as gax's DEADLINE_EXCEEDED was.
  if ((err as Gaxiosish | undefined)?.code === 'TimeoutError') return new SecretManagerError(`no answer within ${timeoutMs} ms`, RPC_CODE.DEADLINE_EXCEEDED, undefined, err);
  const status = (err as Gaxiosish | undefined)?.response?.status;
  if (typeof status !== 'number') return err; // no answer: a socket error, the token exchange's own error
  const body = parseJson((err as Gaxiosish).response!.data) as { error?: { message?: unknown; status?: unknown } } | undefined;
  const e = body?.error;
  if (typeof e !== 'object' || e === null || typeof e.message !== 'string') return err; // classified by its HTTP status
  const code = typeof e.status === 'string' ? RPC_CODE[e.status] : undefined;
  return new SecretManagerError(e.message, code, status, err);
}

export class SecretManagerAccess {
  readonly #override: string | undefined;

  constructor(override: string | undefined) {
    this.#override = override;
  }

  /** One attempt, no library-level retries: tee-init's own retry loop owns the deadline. */
  async access(identity: Identity, ref: string, timeoutMs: number): Promise<AccessedVersion> {
    let text: unknown;
    try {
      // 'json' leaves a body that is not JSON as text (a 200 with one is the server's fault, retried).
      const res = await identity.client.request<unknown>({ url: accessUrl(ref, this.#override), method: 'GET', timeout: timeoutMs, retry: false, responseType: 'json' });
      text = res.data;
    } catch (err) {
      throw decodeFailure(err, timeoutMs);
    }
    const version = parseJson(text) as { name?: unknown; payload?: { data?: unknown; dataCrc32c?: unknown } } | undefined;
    const raw = version?.payload?.data;
    // The name goes into logs and messages: printable, bounded (projects/N/secrets/S/versions/V).
    if (typeof version?.name !== 'string' || !VERSION_NAME.test(version.name) || (raw !== undefined && typeof raw !== 'string')) {
      throw new UnusableAnswer(`Secret Manager answered ${accessUrl(ref, this.#override)} with no secret version in its body (no usable name, or a payload that is not base64 text)`);
    }
    // proto3 JSON: bytes as base64, an absent field for empty; int64 (the CRC32C) as a decimal string.
    const data = raw === undefined ? Buffer.alloc(0) : Buffer.from(raw, 'base64');
    const crc = version.payload?.dataCrc32c;
    return {
      data,
      name: version.name,
      crc32c: typeof crc === 'string' || typeof crc === 'number' ? String(crc) : undefined,
    };
  }
}
