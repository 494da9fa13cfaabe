// A whole emulated Confidential Space world in one call: the attestation token file, the fake
// GCP APIs, the teeserver socket, and two collaborators (alice with a service account, bob
// with direct principal access) whose providers admit only this world's image.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  confidentialSpaceClaims,
  createAttestationKey,
  DEFAULT_IMAGE_DIGEST,
  deepMerge,
  writeTokenFile,
  type AttestationKey,
  type Claims,
  type ClaimOverrides,
  type ConfidentialSpaceClaims,
  type SignOptions,
} from './attestation.ts';
import { startFakeGcp, type FakeGcp, type GcpWorld, type Provider, type SecretVersion, type VersionState } from './gcp.ts';
import { startTeeServer, type FakeTeeServer } from './teeserver.ts';

export interface Collaborator {
  name: string;
  projectId: string;
  projectNumber: string;
  pool: string;
  /** Provider resource name: projects/N/locations/global/workloadIdentityPools/POOL/providers/attestation */
  provider: string;
  /** The STS audience: //iam.googleapis.com/ + provider */
  audience: string;
  /** The service account it reads through, if any. */
  serviceAccount?: string;
  /** What its secrets grant access to by default: the service account, else the pool's principalSet. */
  grantee: string;
}

export interface WorldOptions {
  /** Start the teeserver socket too. Default true. */
  teeserver?: boolean;
  /** The image digest the providers admit, and the token's image_digest. */
  imageDigest?: string;
  /** Overrides of the token's claims (deep-merged over the defaults). */
  claims?: ClaimOverrides;
  expireTokensAfterMs?: number;
  /** Lifetime of Google-signed ID tokens (generateIdToken); default 3600 s. */
  idTokenLifetimeS?: number;
  /** The clock ID tokens are stamped with; default Date.now. */
  now?: () => number;
  /**
   * The collaborators' project numbers (default alice 111, bob 222), e.g. the examples'
   * 111111111111 and 222222222222, so a config written for production names these providers.
   */
  projectNumbers?: { alice?: string; bob?: string };
  /** The fake Google APIs' port on 127.0.0.1; default a free one. */
  port?: number;
}

export interface ExternalAccountConfig {
  type: 'external_account';
  audience: string;
  subject_token_type: string;
  token_url: string;
  credential_source: { file: string };
  service_account_impersonation_url?: string;
}

export interface EmulatedWorld {
  /** Temporary directory holding the token file and the socket; removed by close(). */
  dir: string;
  tokenFile: string;
  key: AttestationKey;
  imageDigest: string;
  gcp: FakeGcp;
  teeserver?: FakeTeeServer;
  /** In the shape of tee-init's `endpoints` config section. */
  endpoints: { sts: string; iamcredentials: string; secretmanager: string; teeserver?: string };
  collaborators: { alice: Collaborator; bob: Collaborator };
  /** Provider resource names, as tee-init's `credentials.*.provider` takes them. */
  providers: { alice: string; bob: string };
  /** The claims of the current token (and of the teeserver's tokens). */
  claims(): ConfidentialSpaceClaims;
  /**
   * Adds (or replaces) a secret. `data` is version 1, or a list of versions. Access defaults to
   * the project's collaborator (its service account, or its pool), or nobody for another project.
   */
  addSecret(name: string, data: string | Buffer | SecretVersion[], options?: { access?: string[]; location?: string }): void;
  /** Adds a version to an existing secret (it becomes `latest`); returns its number. */
  addVersion(name: string, version: string | Buffer | SecretVersion): number;
  /** Sets the state of version `n` of a secret (DISABLED: reads of it, and of `latest` if it is the newest, fail). */
  setVersionState(name: string, n: number, state: VersionState): void;
  /** Adds (or replaces) a service account that the given members (default: alice's pool) may impersonate. */
  addServiceAccount(email: string, impersonators?: string[]): void;
  /** Points a version alias (`versions/ALIAS`) of a secret at version `n`. */
  setAlias(name: string, alias: string, n: number): void;
  /** Re-signs the token file with the default claims deep-merged with `overrides` (not cumulative). */
  writeToken(overrides?: ClaimOverrides, options?: SignOptions): Promise<string>;
  /** google-auth-library's external_account JSON for a collaborator, pointed at the fakes. */
  externalAccount(who: 'alice' | 'bob'): ExternalAccountConfig;
  close(): Promise<void>;
}

/** The attribute condition the reference documents, as a predicate over the claims. */
export function productionCondition(imageDigest: string): Provider['condition'] {
  return (claims: Claims) => {
    const c = claims as Partial<ConfidentialSpaceClaims>;
    if (c.swname !== 'CONFIDENTIAL_SPACE') return `swname is ${String(c.swname)}`;
    if (!c.submods?.confidential_space?.support_attributes?.includes('STABLE')) return 'STABLE is not in support_attributes';
    if (c.dbgstat !== 'disabled-since-boot') return `dbgstat is ${String(c.dbgstat)}`;
    if (c.submods?.container?.image_digest !== imageDigest) return `image_digest is ${String(c.submods?.container?.image_digest)}`;
    return true;
  };
}

function collaborator(name: string, projectId: string, projectNumber: string, serviceAccount?: string): Collaborator {
  const pool = `projects/${projectNumber}/locations/global/workloadIdentityPools/${name}-pool`;
  const provider = `${pool}/providers/attestation`;
  return {
    name,
    projectId,
    projectNumber,
    pool: `${name}-pool`,
    provider,
    audience: `//iam.googleapis.com/${provider}`,
    serviceAccount,
    grantee: serviceAccount ?? `principalSet://iam.googleapis.com/${pool}/*`,
  };
}

/** The project numbers the examples' providers name (projects/111111111111/…), for startWorld's projectNumbers. */
export const EXAMPLE_PROJECT_NUMBERS = { alice: '111111111111', bob: '222222222222' } as const;

/** Every identity of a collaborator's pool, as an IAM member (principalSet://…/POOL/*). */
export function poolMembers(c: Collaborator): string {
  return `principalSet://iam.googleapis.com/projects/${c.projectNumber}/locations/global/workloadIdentityPools/${c.pool}/*`;
}

export async function startWorld(options: WorldOptions = {}): Promise<EmulatedWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'tee-world-'));
  const tokenFile = join(dir, 'attestation_verifier_claims_token');
  const imageDigest = options.imageDigest ?? DEFAULT_IMAGE_DIGEST;
  const key = await createAttestationKey();
  const alice = collaborator('alice', 'alice-proj', options.projectNumbers?.alice ?? '111', 'tee-reader@alice-proj.iam.gserviceaccount.com');
  const bob = collaborator('bob', 'bob-proj', options.projectNumbers?.bob ?? '222');
  const byProject = new Map([alice, bob].flatMap((c) => [[c.projectId, c], [c.projectNumber, c]] as const));

  const condition = productionCondition(imageDigest);
  const world: GcpWorld = {
    jwks: key.jwks,
    providers: { [alice.provider]: { condition }, [bob.provider]: { condition } },
    serviceAccounts: { [alice.serviceAccount!]: { impersonators: [poolMembers(alice)] } },
    secrets: {},
    projectNumbers: { [alice.projectId]: alice.projectNumber, [bob.projectId]: bob.projectNumber },
  };
  const baseOverrides = deepMerge({ submods: { container: { image_digest: imageDigest } } }, options.claims ?? {});
  let current = confidentialSpaceClaims(baseOverrides);

  let gcp: FakeGcp | undefined;
  let teeserver: FakeTeeServer | undefined;
  try {
    gcp = await startFakeGcp(world, { expireTokensAfterMs: options.expireTokensAfterMs, idTokenLifetimeS: options.idTokenLifetimeS, now: options.now, port: options.port });
    if (options.teeserver ?? true) {
      teeserver = await startTeeServer({ socketPath: join(dir, 'teeserver.sock'), key, claims: () => current });
    }
  } catch (err) {
    await gcp?.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const writeToken = async (overrides: ClaimOverrides = {}, signOptions?: SignOptions) => {
    current = confidentialSpaceClaims(deepMerge(baseOverrides, overrides));
    const jwt = await key.sign(current, signOptions);
    writeTokenFile(tokenFile, jwt);
    return jwt;
  };
  await writeToken();

  const fakeGcp = gcp;
  return {
    dir,
    tokenFile,
    key,
    imageDigest,
    gcp: fakeGcp,
    teeserver,
    endpoints: { ...fakeGcp.endpoints, ...(teeserver ? { teeserver: teeserver.socketPath } : {}) },
    collaborators: { alice, bob },
    providers: { alice: alice.provider, bob: bob.provider },
    claims: () => current,
    addSecret(name, data, secretOptions = {}) {
      const project = /^projects\/([^/]+)\//.exec(name)?.[1];
      const owner = project === undefined ? undefined : byProject.get(project);
      const versions = Array.isArray(data) ? data : [{ data }];
      world.secrets![name] = {
        versions,
        access: secretOptions.access ?? (owner ? [owner.grantee] : []),
        ...(secretOptions.location !== undefined ? { location: secretOptions.location } : {}),
      };
    },
    addVersion(name, version) {
      const secret = world.secrets![name];
      if (!secret) throw new Error(`fake world: no secret ${name}`);
      return secret.versions.push(typeof version === 'string' || Buffer.isBuffer(version) ? { data: version } : version);
    },
    setVersionState(name, n, state) {
      const version = world.secrets![name]?.versions[n - 1];
      if (!version) throw new Error(`fake world: no version ${n} of secret ${name}`);
      version.state = state;
    },
    addServiceAccount(email, impersonators = [poolMembers(alice)]) {
      world.serviceAccounts![email] = { impersonators };
    },
    setAlias(name, alias, n) {
      const secret = world.secrets![name];
      if (!secret) throw new Error(`fake world: no secret ${name}`);
      secret.aliases = { ...secret.aliases, [alias]: n };
    },
    writeToken,
    externalAccount(who) {
      const c = who === 'alice' ? alice : bob;
      return {
        type: 'external_account',
        audience: c.audience,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: fakeGcp.endpoints.sts,
        credential_source: { file: tokenFile },
        ...(c.serviceAccount
          ? { service_account_impersonation_url: `${fakeGcp.url}/v1/projects/-/serviceAccounts/${c.serviceAccount}:generateAccessToken` }
          : {}),
      };
    },
    async close() {
      await Promise.all([fakeGcp.close(), teeserver?.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
