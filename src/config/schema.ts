// The config contract (DESIGN.md, "Configuration"), as a zod schema. Parsing yields typed,
// defaulted values: durations in milliseconds, modes as numbers, endpoints filled in.
import { z } from 'zod';
import { parseDuration } from '../duration.ts';
import { LOG_LEVELS } from '../log.ts';
import { checkEndpointUrl } from './endpoints.ts';

export const DEFAULT_TOKEN_FILE = '/run/container_launcher/attestation_verifier_claims_token';
export const DEFAULT_ENDPOINTS = {
  sts: 'https://sts.googleapis.com/v1/token',
  iamcredentials: 'https://iamcredentials.googleapis.com',
  secretmanager: 'https://secretmanager.googleapis.com',
  teeserver: '/run/container_launcher/teeserver.sock',
} as const;

const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
const name = (what: string) =>
  z.string().regex(NAME, { error: `${what} must be a name: letters, digits, _ and -, starting with a letter or _` });

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? Math.round(v * 1000) : parseDuration(v);
  if (ms === undefined || ms < 0) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration: use e.g. 30s, 500ms, 2m` });
    return z.NEVER;
  }
  return ms;
});

/**
 * File modes. YAML 1.2 reads an unquoted 0400 as the decimal number 400, so a number whose
 * decimal digits are all octal digits is read as the octal mode it was meant to be.
 * Secrets are never group/other-writable and carry no setuid/setgid/sticky bits.
 */
const mode = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const text = String(v).replace(/^0o/, '');
  if (!/^[0-7]{3,4}$/.test(text)) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a file mode: write it as a string like "0400"` });
    return z.NEVER;
  }
  const m = Number.parseInt(text, 8);
  if ((m & ~0o755) !== 0 || (m & 0o400) === 0) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)}: a secret file must be readable by its owner and writable by nobody else (e.g. "0400", "0440")` });
    return z.NEVER;
  }
  return m;
});

/** A file name inside the output directory: no directories, no dot names. */
const fileName = z
  .string()
  .regex(/^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/, { error: 'must be a plain file name (letters, digits, . _ -), no "/"' });

const url = (field: string) =>
  z.string().superRefine((v, ctx) => {
    const problem = checkEndpointUrl(v);
    if (problem) ctx.addIssue({ code: 'custom', message: `${field} ${JSON.stringify(v)}: ${problem}` });
  });

const PROVIDER = /^projects\/\d+\/locations\/global\/workloadIdentityPools\/[a-z0-9-]{4,32}\/providers\/[a-z0-9-]{4,32}$/;
const SERVICE_ACCOUNT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com$|^[^@\s]+@[^@\s]+$/;
const SECRET_REF = /^projects\/[^/\s]+\/(locations\/[a-z0-9-]+\/)?secrets\/[A-Za-z0-9_-]{1,255}\/versions\/(latest|[1-9][0-9]*)$/;

const confidentialSpace = z.strictObject({
  type: z.literal('confidential-space'),
  provider: z.string().regex(PROVIDER, {
    error: 'must be projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER',
  }),
  serviceAccount: z.string().regex(SERVICE_ACCOUNT, { error: 'must be a service account email' }).optional(),
  /** A custom-audience token from the launcher's teeserver socket instead of the default token file. */
  token: z
    .strictObject({
      audience: z.string().min(1).max(512),
      nonces: z.array(z.string().min(8).max(88)).min(1).max(6).optional(),
      type: z.enum(['OIDC', 'PKI']).default('OIDC'),
    })
    .optional(),
});
const adc = z.strictObject({ type: z.literal('adc') });
const credential = z.discriminatedUnion('type', [confidentialSpace, adc], {
  error: 'type must be "confidential-space" or "adc"',
});

const gcpSecret = z.strictObject({
  source: z.literal('gcp'),
  ref: z.string().regex(SECRET_REF, {
    error: 'must be projects/P/secrets/S/versions/V or projects/P/locations/L/secrets/S/versions/V (V a number or latest)',
  }),
  credentials: name('credentials'),
  file: fileName.optional(),
  mode: mode.optional(),
});
const fileSecret = z.strictObject({
  source: z.literal('file'),
  path: z.string().min(1),
  file: fileName.optional(),
  mode: mode.optional(),
});
const secret = z.discriminatedUnion('source', [gcpSecret, fileSecret], { error: 'source must be "gcp" or "file"' });

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: 'must be HOST:PORT' });

const pskIdentity = z.strictObject({
  shares: z.array(name('a share')).min(1),
  combine: z.enum(['sha256-concat', 'hkdf-sha256'], { error: 'combine must be sha256-concat or hkdf-sha256 (there is no default)' }),
  salt: z.string().min(1).optional(),
  info: z.string().min(1).optional(),
});

export const configSchema = z.strictObject({
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).default({ level: 'info' }),
  attestation: z
    .strictObject({
      tokenFile: z.string().min(1).default(DEFAULT_TOKEN_FILE),
      waitFor: duration.default(30_000),
      require: z.record(z.string().min(1), z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()])).min(1)])).default({}),
    })
    .default({ tokenFile: DEFAULT_TOKEN_FILE, waitFor: 30_000, require: {} }),
  credentials: z.record(name('a credentials name'), credential).default({}),
  secrets: z.record(name('a secret name'), secret).default({}),
  fetch: z
    .strictObject({
      deadline: duration.default(60_000),
      /** One request (token exchange, secret access) gets this long before it is retried. */
      attemptTimeout: duration.default(15_000),
      concurrency: z.number().int().min(1).max(256).default(16),
      backoff: z
        .strictObject({ initial: duration.default(200), max: duration.default(10_000) })
        .default({ initial: 200, max: 10_000 }),
    })
    .default({ deadline: 60_000, attemptTimeout: 15_000, concurrency: 16, backoff: { initial: 200, max: 10_000 } }),
  output: z
    .strictObject({
      dir: z.string().startsWith('/', { error: 'must be an absolute path' }).optional(),
      owner: z.string().regex(/^([a-z_][a-z0-9_-]*\$?|\d+)(:([a-z_][a-z0-9_-]*|\d+))?$/, { error: 'must be USER, UID, USER:GROUP or UID:GID' }).optional(),
      allowNonTmpfs: z.boolean().default(false),
    })
    .default({ allowNonTmpfs: false }),
  run: z
    .strictObject({
      preset: z.enum(['redis', 'envoy-http', 'envoy-network', 'envoy-tunnel-client', 'envoy-tunnel-server', 'none']).default('none'),
      with: z.record(z.string(), z.unknown()).default({}),
      command: z.array(z.string()).min(1).optional(),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' }), z.string()).default({}),
      files: z
        .array(
          z.strictObject({
            name: fileName,
            template: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]),
            format: z.enum(['json', 'yaml', 'text']).optional(),
            mode: mode.optional(),
          }),
        )
        .default([]),
      user: z.string().regex(/^([a-z_][a-z0-9_-]*\$?|\d+)(:([a-z_][a-z0-9_-]*|\d+))?$/, { error: 'must be USER, UID, USER:GROUP or UID:GID' }).optional(),
      gracePeriod: duration.optional(),
    })
    .default({ preset: 'none', with: {}, env: {}, files: [] }),
  psk: z
    .strictObject({
      mode: z.enum(['server', 'client']),
      listen: hostPort,
      connect: hostPort,
      identities: z.record(z.string().min(1).max(128), pskIdentity).refine((ids) => Object.keys(ids).length > 0, { error: 'needs at least one identity' }),
      tls12: z.boolean().default(false),
      handshakeTimeout: duration.default(10_000),
      idleTimeout: duration.default(12 * 3_600_000),
      maxConnections: z.number().int().min(1).max(100_000).default(1024),
      readyTimeout: duration.default(30_000),
    })
    .optional(),
  endpoints: z
    .strictObject({
      sts: url('endpoints.sts').default(DEFAULT_ENDPOINTS.sts),
      iamcredentials: url('endpoints.iamcredentials').default(DEFAULT_ENDPOINTS.iamcredentials),
      secretmanager: url('endpoints.secretmanager').optional(),
      teeserver: z.string().startsWith('/', { error: 'must be an absolute socket path' }).default(DEFAULT_ENDPOINTS.teeserver),
    })
    .default({ sts: DEFAULT_ENDPOINTS.sts, iamcredentials: DEFAULT_ENDPOINTS.iamcredentials, teeserver: DEFAULT_ENDPOINTS.teeserver }),
});

export type Config = z.infer<typeof configSchema>;
export type CredentialConfig = Config['credentials'][string];
export type SecretConfig = Config['secrets'][string];
export type GcpSecretConfig = Extract<SecretConfig, { source: 'gcp' }>;
export type PskConfig = NonNullable<Config['psk']>;
export type RunConfig = Config['run'];
export type Endpoints = Config['endpoints'];
