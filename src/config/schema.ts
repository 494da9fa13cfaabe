// The config contract (docs/configuration.md, "Configuration"), as a zod schema. Parsing yields typed,
// defaulted values: durations in milliseconds, modes as numbers, endpoints filled in.
import { z } from 'zod';
import { found } from './messages.ts';
import { LOG_LEVELS } from '../lib/log.ts';
import { withUnits } from './schema-run.ts';
import { pskShorthandSchema } from './listeners/psk.ts';
import { claimValue, duration, hostPort, name, nonces, url } from './fields.ts';
import { refreshSchema } from './schema-refresh.ts';
import { listenersSchema } from './schema-listeners.ts';

export const DEFAULT_TOKEN_FILE = '/run/container_launcher/attestation_verifier_claims_token';
export const DEFAULT_ENDPOINTS = {
  sts: 'https://sts.googleapis.com/v1/token',
  iamcredentials: 'https://iamcredentials.googleapis.com',
  secretmanager: 'https://secretmanager.googleapis.com',
  teeserver: '/run/container_launcher/teeserver.sock',
} as const;

/**
 * File modes, best written as a quoted octal string ("0400"). YAML 1.2 reads an unquoted 0400
 * as the decimal number 400, so a number whose decimal digits are all octal digits is read as
 * the octal mode it was meant to be; 0o400 reaches us as text (see load.ts) and is read as octal.
 * Secrets are never group/other-writable and carry no setuid/setgid/sticky bits.
 */
const mode = z.unknown().transform((v, ctx) => {
  const fail = (why: string) => {
    ctx.addIssue({ code: 'custom', message: `found ${found(v)}, ${why}` });
    return z.NEVER;
  };
  if (typeof v !== 'string' && typeof v !== 'number') return fail('write an octal file mode as a quoted string, like "0400" or "0440"');
  const text = String(v).replace(/^0o/, '');
  if (!/^[0-7]{3,4}$/.test(text)) return fail('which is not an octal file mode: write it as a quoted string, like "0400" or "0440"');
  const m = Number.parseInt(text, 8);
  if ((m & ~0o755) !== 0 || (m & 0o400) === 0) {
    const read = typeof v === 'number' ? `read as the octal mode 0${text}, ` : '';
    return fail(`${read}but a secret file must be readable by its owner and writable by nobody else: write e.g. "0400" or "0440"`);
  }
  return m;
});

/** A file name inside the output directory: no directories, no dot names. */
const fileName = z
  .string()
  // Names starting with ".." are the output directory's own (..data, the secret generations).
  .regex(/^(?!\.{1,2}$)(?!\.\.)[A-Za-z0-9._-]{1,128}$/, { error: 'write a plain file name (letters, digits, . _ -, at most 128), no "/", not starting with ".." (reserved for ..data)' });

const PROVIDER = /^projects\/\d+\/locations\/global\/workloadIdentityPools\/[a-z0-9-]{4,32}\/providers\/[a-z0-9-]{4,32}$/;
const SERVICE_ACCOUNT = /^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com$|^[^@\s]+@[^@\s]+$/;
const SECRET_REF = /^projects\/[^/\s]+\/(locations\/[a-z0-9-]+\/)?secrets\/[A-Za-z0-9_-]{1,255}\/versions\/(latest|[1-9][0-9]*|[A-Za-z][A-Za-z0-9_-]{0,62})$/;

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
      nonces: nonces.optional(),
      type: z.enum(['OIDC', 'PKI']).default('OIDC'),
    })
    .optional(),
});
const adc = z.strictObject({ type: z.literal('adc') });
/** A discriminated union's message: for an entry that is not a mapping, and for a wrong kind. */
const kindError = (key: string, kinds: string) => (iss: { code: string }) =>
  iss.code === 'invalid_type' ? `write a mapping with ${key}: ${kinds} and the fields that go with it` : `${key} must be ${kinds}`;
const credential = z.discriminatedUnion('type', [confidentialSpace, adc], { error: kindError('type', '"confidential-space" or "adc"') });

const gcpSecret = z.strictObject({
  source: z.literal('gcp'),
  ref: z.string().regex(SECRET_REF, {
    error: 'must be projects/P/secrets/S/versions/V or projects/P/locations/L/secrets/S/versions/V (V a number, latest or an alias)',
  }),
  credentials: name('credentials'),
  file: fileName.optional(),
  mode: mode.optional(),
  allowExpired: z.boolean().optional(), // an expired certificate in it is announced, not refused
});
const fileSecret = z.strictObject({
  source: z.literal('file'),
  path: z.string().min(1),
  file: fileName.optional(),
  mode: mode.optional(),
  allowExpired: z.boolean().optional(), // an expired certificate in it is announced, not refused
});
const secret = z.discriminatedUnion('source', [gcpSecret, fileSecret], { error: kindError('source', '"gcp" or "file"') });

/** As `docker run --user`; the ids themselves are checked when resolved (users.ts). */
const userSpec = z.string().regex(/^([a-z_][a-z0-9_-]*\$?|\d+)(:([a-z_][a-z0-9_-]*|\d+))?$/, {
  error: 'write USER, UID, USER:GROUP or UID:GID (e.g. redis, 999, redis:redis, 999:999)',
});

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = z.string().regex(ENV_NAME, {
  error: (iss) => {
    const fixed = String(iss.input).replace(/[^A-Za-z0-9_]/g, '_').replace(/^(?=\d)/, '_');
    return `which is not an environment variable name: use letters, digits and _, not starting with a digit (e.g. ${fixed})`;
  },
});
/** Numbers and true/false are taken as the text they read as (PORT: 8080), like docker compose. */
const envValue = z.union([z.string(), z.number(), z.boolean()], { error: 'write text' }).transform(String);

const baseSchema = z.strictObject({
  log: z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).default({ level: 'info' }),
  attestation: z
    .strictObject({
      tokenFile: z.string().min(1).default(DEFAULT_TOKEN_FILE),
      waitFor: duration().default(30_000),
      require: z.record(z.string().min(1), claimValue).default({}),
      /** A token whose dbgstat is not disabled-since-boot (a debug image) is refused unless true. */
      allowDebug: z.boolean().default(false),
    })
    .default({ tokenFile: DEFAULT_TOKEN_FILE, waitFor: 30_000, require: {}, allowDebug: false }),
  credentials: z.record(name('a credentials name'), credential).default({}),
  secrets: z.record(name('a secret name'), secret).default({}),
  fetch: z
    .strictObject({
      deadline: duration(1).default(60_000),
      /** One request (token exchange, secret access) gets this long before it is retried. */
      attemptTimeout: duration(1).default(15_000),
      concurrency: z.number().int().min(1).max(256).default(16),
      backoff: z
        .strictObject({ initial: duration(1).default(200), max: duration(1).default(10_000) })
        .default({ initial: 200, max: 10_000 }),
    })
    .default({ deadline: 60_000, attemptTimeout: 15_000, concurrency: 16, backoff: { initial: 200, max: 10_000 } }),
  output: z
    .strictObject({
      dir: z.string().startsWith('/', { error: 'must be an absolute path' }).optional(),
      owner: userSpec.optional(),
      allowNonTmpfs: z.boolean().default(false),
    })
    .default({ allowNonTmpfs: false }),
  run: z
    .strictObject({
      preset: z.enum(['redis', 'envoy-http', 'envoy-network', 'envoy-tunnel-client', 'envoy-tunnel-server', 'postgres', 'none']).default('none'),
      with: z.record(z.string(), z.unknown()).default({}),
      command: z.array(z.string()).min(1).optional(),
      env: z.record(envName, envValue).default({}),
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
      user: userSpec.optional(),
      /** The program's working directory (compose's working_dir); default: the init's own. */
      workingDir: z.string().startsWith('/', { error: 'must be an absolute path' }).refine((p) => !p.includes('\0'), { error: 'contains a NUL byte' }).optional(),
      gracePeriod: duration().optional(),
    })
    .default({ preset: 'none', with: {}, env: {}, files: [] }),
  /** Shorthand for one listener named psk (src/config/listeners/psk.ts). */
  psk: pskShorthandSchema.optional(),
  listeners: listenersSchema,
  /** Rotation (src/refresh/): absent, the secrets are read once at boot. */
  refresh: refreshSchema.optional(),
  endpoints: z
    .strictObject({
      sts: url('endpoints.sts').default(DEFAULT_ENDPOINTS.sts),
      iamcredentials: url('endpoints.iamcredentials').default(DEFAULT_ENDPOINTS.iamcredentials),
      secretmanager: url('endpoints.secretmanager').optional(),
      teeserver: z.string().startsWith('/', { error: 'must be an absolute socket path' }).default(DEFAULT_ENDPOINTS.teeserver),
      /** The attestation service's JWKS, for listeners that verify a peer's token (default: from its discovery document). */
      jwks: url('endpoints.jwks').optional(),
    })
    .default({ sts: DEFAULT_ENDPOINTS.sts, iamcredentials: DEFAULT_ENDPOINTS.iamcredentials, teeserver: DEFAULT_ENDPOINTS.teeserver }),
});

// processes:, run.stopSignal, health: (src/config/schema-run.ts).
export type BaseSchema = typeof baseSchema;
export const configSchema = withUnits(baseSchema, { duration, hostPort, name });

export type Config = z.infer<typeof configSchema>;
export type CredentialConfig = Config['credentials'][string];
export type SecretConfig = Config['secrets'][string];
export type GcpSecretConfig = Extract<SecretConfig, { source: 'gcp' }>;
export type PskConfig = NonNullable<Config['psk']>;
export type RunConfig = Config['run'];
export type Endpoints = Config['endpoints'];
