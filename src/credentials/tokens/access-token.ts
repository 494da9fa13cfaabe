// OAuth access tokens of a configured credential (the same exchange the secret fetch uses),
// with the scopes the config asks for.
import { CLOUD_PLATFORM } from '../token-types.ts';
import { UnusableAnswer } from '../../lib/classify.ts';
import type { TokenKindSpec } from './minter.ts';

const HOUR = 3600_000;

export const accessToken: TokenKindSpec = {
  perAudience: false,
  problem(config, credential) {
    if (!config.credentials || !credential) return 'an access-token needs `credentials:` naming a configured credential';
    if (config.audience !== undefined) return 'an access-token has no audience (use scopes)';
    return undefined;
  },
  minter(config, _credential, deps) {
    const scopes = config.scopes ?? [CLOUD_PLATFORM];
    return async () => {
      const { client } = await deps.identity(config.credentials!, { scopes });
      const { token } = await client.getAccessToken();
      if (!token) throw new UnusableAnswer(`credentials ${config.credentials}: no access token returned`);
      return { value: token, expiresAt: client.credentials.expiry_date ?? deps.now() + HOUR };
    };
  },
};
