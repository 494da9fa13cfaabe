// One Google identity per collaborator. `confidential-space`: workload identity federation, the
// attestation token exchanged at STS for that collaborator's pool (optionally impersonating its
// service account); `adc`: Application Default Credentials, for runs outside a TEE.
// google-auth-library is imported here, lazily, so the plain init never loads it.
import type { AuthClient } from 'google-auth-library';
import { decodeJwt } from 'jose';
import { checkDebug } from '../attest/claims.ts';
import { fetchCustomToken } from '../attest/teeserver.ts';
import { currentToken, type TokenFileOptions } from '../attest/token-file.ts';
import { cjsExports } from '../lib/cjs.ts';
import type { Config, CredentialConfig, Endpoints } from '../config/schema.ts';
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import { CLOUD_PLATFORM } from './token-types.ts';

export interface Identity {
  name: string;
  /** For messages: which identity was used, never any token. */
  label: string;
  client: AuthClient;
}

export interface IdentityContext {
  tokenFile: string;
  /** How the default token is read at each exchange (the file, or the teeserver once it expired); default: the file alone. */
  defaultToken?: TokenFileOptions;
  /** attestation.allowDebug: a custom-audience token from a debug image is refused (77) unless true. */
  allowDebug?: boolean;
  endpoints: Endpoints;
  teeserverTimeoutMs: number;
}

/** `name (provider, as SA)`; with `endpoints`, also where its token comes from (for failures). */
export function describeCredential(name: string, c: CredentialConfig, endpoints?: Endpoints): string {
  if (c.type === 'adc') return `${name} (application default credentials)`;
  const via = endpoints ? `; token from ${endpoints.sts}${c.serviceAccount ? ` then ${impersonationUrl(endpoints, c.serviceAccount)}` : ''}` : '';
  return `${name} (${c.provider}${c.serviceAccount ? `, as ${c.serviceAccount}` : ''}${via})`;
}

/** IAM Credentials' generateAccessToken for `serviceAccount` (impersonation after the exchange). */
export function impersonationUrl(endpoints: Endpoints, serviceAccount: string): string {
  return `${endpoints.iamcredentials.replace(/\/+$/, '')}/v1/projects/-/serviceAccounts/${serviceAccount}:generateAccessToken`;
}

/** How a client is built beyond its config: other scopes, or the federated token without impersonation. */
export interface IdentityOptions {
  /** OAuth scopes of its access tokens (default cloud-platform). */
  scopes?: readonly string[];
  /** false: stop at the STS token even when a serviceAccount is configured (IAM generateIdToken wants that one). */
  impersonate?: boolean;
}

export async function createIdentities(credentials: Config['credentials'], names: Iterable<string>, ctx: IdentityContext, options: IdentityOptions = {}): Promise<Map<string, Identity>> {
  const { GoogleAuth, IdentityPoolClient } = cjsExports(await import('google-auth-library'));
  const scopes = [...(options.scopes ?? [CLOUD_PLATFORM])];
  const out = new Map<string, Identity>();
  for (const name of names) {
    const c = credentials[name]!;
    const label = describeCredential(name, c);
    if (c.type === 'adc') {
      const client = (await new GoogleAuth({ scopes }).getClient()) as AuthClient;
      out.set(name, { name, label, client });
      continue;
    }
    const custom = c.token;
    const impersonate = c.serviceAccount !== undefined && options.impersonate !== false;
    const client = new IdentityPoolClient({
      type: 'external_account',
      audience: `//iam.googleapis.com/${c.provider}`,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: ctx.endpoints.sts,
      scopes,
      ...(impersonate
        ? { service_account_impersonation_url: impersonationUrl(ctx.endpoints, c.serviceAccount!) }
        : {}),
      // The default token file is re-read at every exchange (the launcher refreshes it; when it
      // does not and the token expired, the teeserver's default token replaces it); a custom
      // audience comes fresh from the launcher's socket instead.
      subject_token_supplier: {
        getSubjectToken: custom
          ? () => customToken(ctx, custom)
          : () => currentToken(ctx.defaultToken ?? { path: ctx.tokenFile, waitForMs: 0 }),
      },
    });
    out.set(name, { name, label, client });
  }
  return out;
}

/**
 * A custom-audience token for an exchange. It bears the same dbgstat as the default token, which
 * such an identity never reads: a debug image is refused here (77), as the boot does for that.
 */
async function customToken(ctx: IdentityContext, request: Parameters<typeof fetchCustomToken>[1]): Promise<string> {
  const jwt = await fetchCustomToken(ctx.endpoints.teeserver, request, ctx.teeserverTimeoutMs);
  let claims;
  try {
    claims = decodeJwt(jwt);
  } catch {
    throw new InitError(EXIT.noInput, `teeserver ${ctx.endpoints.teeserver} answered the token request for audience ${JSON.stringify(request.audience)} with something that is not a JWT`);
  }
  checkDebug(claims, ctx.allowDebug ?? false);
  return jwt;
}
