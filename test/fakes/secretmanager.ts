// Secret Manager AccessSecretVersion over REST, global and regional, with Google's semantics:
// `latest` is the most recently created version whatever its state (so a disabled newest
// version fails with FAILED_PRECONDITION), names come back with the project NUMBER and the
// resolved version, and the payload carries its CRC32C as a decimal string.
import CRC32C from 'crc-32/crc32c.js';
import { googleError, UNAUTHENTICATED_MESSAGE } from './errors.ts';
import type { GcpWorld, Outcome, Secret } from './gcp.ts';
import { grants, type Principal } from './principals.ts';

const ACCESS_PATH = /^\/v1\/projects\/([^/]+)(?:\/locations\/([^/]+))?\/secrets\/([^/]+)\/versions\/([^/:]+):access$/;
const SECRET_KEY = /^projects\/([^/]+)(?:\/locations\/([^/]+))?\/secrets\/([^/]+)$/;

export function crc32c(data: Buffer): number {
  return CRC32C.buf(data) >>> 0;
}

export interface AccessRef {
  project: string;
  location?: string;
  secret: string;
  version: string;
  /** `projects/P[/locations/L]/secrets/S` as requested. */
  requested: string;
}

export function parseAccessPath(pathname: string): AccessRef | undefined {
  const m = ACCESS_PATH.exec(pathname);
  if (!m) return undefined;
  const [project, location, secret, version] = [m[1]!, m[2], m[3]!, m[4]!].map((s) => (s === undefined ? s : decodeURIComponent(s)));
  const requested = `projects/${project}${location ? `/locations/${location}` : ''}/secrets/${secret}`;
  return { project: project!, location, secret: secret!, version: version!, requested };
}

export interface FoundSecret {
  key: string;
  secret: Secret;
  project: string;
  location?: string;
}

const projectNumber = (world: GcpWorld, project: string) => world.projectNumbers?.[project] ?? project;

/** The world's secret a request names; project ids and numbers are interchangeable, locations are not. */
export function findSecret(world: GcpWorld, ref: AccessRef): FoundSecret | undefined {
  for (const [key, secret] of Object.entries(world.secrets ?? {})) {
    const m = SECRET_KEY.exec(key);
    if (!m || m[3] !== ref.secret) continue;
    const location = m[2] ?? secret.location;
    if (location !== ref.location) continue;
    if (projectNumber(world, m[1]!) !== projectNumber(world, ref.project)) continue;
    return { key, secret, project: m[1]!, location };
  }
  return undefined;
}

export interface AccessResult extends Outcome {
  version?: number;
}

export function accessSecretVersion(
  world: GcpWorld,
  caller: Principal | undefined,
  ref: AccessRef,
  found: FoundSecret | undefined,
  options: { corruptCrc?: boolean } = {},
): AccessResult {
  if (!caller) return { status: 401, body: googleError(401, UNAUTHENTICATED_MESSAGE) };
  const number = projectNumber(world, found?.project ?? ref.project);
  const secretName = `projects/${number}${ref.location ? `/locations/${ref.location}` : ''}/secrets/${ref.secret}`;
  if (!found || found.secret.versions.length === 0) {
    return { status: 404, body: googleError(404, `Secret [${secretName}] not found or has no versions.`) };
  }
  if (!found.secret.access.some((g) => grants(g, caller))) {
    return {
      status: 403,
      body: googleError(
        403,
        `Permission 'secretmanager.versions.access' denied for resource '${ref.requested}/versions/${ref.version}' (or it may not exist).`,
      ),
    };
  }
  const alias = Object.hasOwn(found.secret.aliases ?? {}, ref.version) ? found.secret.aliases![ref.version] : undefined;
  const n = ref.version === 'latest' ? found.secret.versions.length : /^[1-9]\d*$/.test(ref.version) ? Number(ref.version) : alias ?? NaN;
  const version = found.secret.versions[n - 1];
  const versionName = `${secretName}/versions/${Number.isNaN(n) ? ref.version : n}`;
  if (!version) return { status: 404, body: googleError(404, `Secret Version [${versionName}] not found.`) };
  const state = version.state ?? 'ENABLED';
  if (state !== 'ENABLED') {
    return { status: 400, body: googleError(400, `Secret Version [${versionName}] is in ${state} state.`, 'FAILED_PRECONDITION'), version: n };
  }
  const data = typeof version.data === 'string' ? Buffer.from(version.data, 'utf8') : version.data;
  const crc = options.corruptCrc ? (crc32c(data) ^ 0x5a5a) >>> 0 : crc32c(data);
  const payload: Record<string, string> = { data: data.toString('base64') };
  if (!version.omitCrc32c) payload.dataCrc32c = String(crc);
  return { status: 200, body: { name: versionName, payload }, version: n };
}
