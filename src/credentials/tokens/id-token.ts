// Google-signed ID tokens for a service account. A federated principal cannot be issued one
// itself: the STS token of the collaborator's pool asks IAM Credentials generateIdToken for the
// service account it may impersonate (roles/iam.workloadIdentityUser includes getOpenIdToken).
// ADC: the library's own ID-token client (service account keys, impersonated credentials).
import type { AuthClient } from 'google-auth-library';
import { cjsExports } from '../../lib/cjs.ts';
import { jwtExpiry } from './expiry.ts';
import { UnusableAnswer } from '../../lib/classify.ts';
import type { TokenKindSpec } from './minter.ts';

const HOUR = 3600_000;

export const idToken: TokenKindSpec = {
  perAudience: true,
  problem(config, credential) {
    if (!config.credentials || !credential) return 'an id-token needs `credentials:` naming a configured credential';
    if (credential.type === 'confidential-space' && !credential.serviceAccount) {
      return `credentials.${config.credentials} has no serviceAccount: Google issues ID tokens only to a service account, which the workload impersonates`;
    }
    return undefined;
  },
  minter(config, credential, deps) {
    const name = config.credentials!;
    if (credential!.type === 'adc') {
      return async (audience) => {
        const { GoogleAuth } = cjsExports(await import('google-auth-library'));
        const client = await new GoogleAuth().getIdTokenClient(audience);
        const value = await client.idTokenProvider.fetchIdToken(audience);
        return { value, expiresAt: jwtExpiry(value, deps.now() + HOUR) };
      };
    }
    const base = deps.endpoints.iamcredentials.replace(/\/+$/, '');
    const url = `${base}/v1/projects/-/serviceAccounts/${encodeURIComponent(credential!.serviceAccount!)}:generateIdToken`;
    return async (audience) => {
      const { client } = await deps.identity(name, { impersonate: false });
      const res = await (client as AuthClient).request<{ token?: unknown }>({
        url,
        method: 'POST',
        data: { audience, includeEmail: true },
        // tee-init's own retry loop owns the deadline.
        retry: false,
        timeout: deps.attemptTimeoutMs,
      });
      const value = res.data.token;
      if (typeof value !== 'string' || value.split('.').length !== 3) throw new UnusableAnswer(`IAM credentials generateIdToken for ${credential!.serviceAccount} answered without a token`);
      return { value, expiresAt: jwtExpiry(value, deps.now() + HOUR) };
    };
  },
};
