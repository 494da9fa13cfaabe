// The part of the GCE metadata tree tee-init serves (what Google's client libraries read to get
// credentials): the default service account's token, ID tokens, email and scopes, the project,
// the universe domain, and the directories leading to them. Anything else is 404, as on GCE.
import type { AccountInfo, TokenSource } from '../../../credentials/token-types.ts';

/** `refused`: why the program's request is refused (counted and logged, rate-limited). */
export type Answer = { status: number; text: string; json?: false; refused?: string } | { status: number; json: true; body: unknown };

export interface MetadataSources {
  account: AccountInfo;
  /** The configured scopes: those of every access token this listener hands out. */
  scopes: readonly string[];
  /** A request's ?scopes= named `count` scopes not configured (it gets the configured ones). */
  otherScopes(count: number): void;
  /** The access-token source for `scopes`. */
  accessToken: TokenSource;
  /** undefined: the credential cannot mint ID tokens (no service account). */
  idToken: TokenSource | undefined;
  now: () => number;
}

const V1 = '/computeMetadata/v1';
const SA_DIR = `${V1}/instance/service-accounts`;
const text = (t: string): Answer => ({ status: 200, text: t });
const list = (...entries: string[]): Answer => text(`${entries.join('\n')}\n`);
export const notFound = (): Answer => ({ status: 404, text: '<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)</title><p><b>404.</b> That\u2019s an error.\n' });

/** The longest ID-token audience served (the config's `token.audience` has the same bound). */
export const MAX_AUDIENCE = 512;
const AUDIENCE = new RegExp(`^[\\x21-\\x7e]{1,${MAX_AUDIENCE}}$`);

type Handler = (q: URLSearchParams, s: MetadataSources) => Answer | Promise<Answer>;

/** Leaves of the default service account, also reachable under its email. */
const ACCOUNT: Record<string, Handler> = {
  '/': (q, s) =>
    q.get('recursive') === 'true'
      ? { status: 200, json: true, body: { aliases: ['default'], ...(s.account.email ? { email: s.account.email } : {}), scopes: s.scopes } }
      : list('aliases', ...(s.account.email ? ['email'] : []), ...(s.idToken ? ['identity'] : []), 'scopes', 'token'),
  '/aliases': () => text('default'),
  '/email': (_q, s) => (s.account.email ? text(s.account.email) : notFound()),
  '/scopes': (_q, s) => list(...s.scopes),
  '/token': async (q, s) => {
    // One token per listener, with the configured scopes, whatever ?scopes= asks: a program
    // naming new scope lists at will would make the init keep (and mint at Google) one token per
    // list. Client libraries ask for their API's default scopes, which cloud-platform covers.
    const asked = q.getAll('scopes').flatMap((v) => v.split(',')).map((x) => x.trim()).filter(Boolean);
    const other = asked.filter((x) => !s.scopes.includes(x)).length;
    if (other > 0) s.otherScopes(other);
    const t = await s.accessToken.get();
    return { status: 200, json: true, body: { access_token: t.value, expires_in: Math.max(0, Math.floor((t.expiresAt - s.now()) / 1000)), token_type: 'Bearer' } };
  },
  '/identity': async (q, s) => {
    const audience = q.get('audience');
    if (!audience) return { status: 400, text: 'non-empty audience parameter required\n' };
    // Each audience is a cached token (and a mint): a bounded, printable key (as `token.audience` in the config).
    if (!AUDIENCE.test(audience)) {
      const why = `audience must be 1-${MAX_AUDIENCE} printable characters without spaces`;
      return { status: 400, text: `${why}\n`, refused: why };
    }
    if (!s.idToken) return notFound();
    return text((await s.idToken.get(audience)).value);
  },
};

const FIXED: Record<string, Handler> = {
  '/': () => list('computeMetadata/'),
  '/computeMetadata/': () => list('v1/'),
  [`${V1}/`]: () => list('instance/', 'project/', 'universe/'),
  [`${V1}/instance/`]: () => list('service-accounts/'),
  [`${SA_DIR}/`]: (_q, s) => list('default/', ...(s.account.email ? [`${s.account.email}/`] : [])),
  [`${V1}/project/`]: (_q, s) => list(...(s.account.projectNumber ? ['numeric-project-id'] : []), ...(s.account.projectId ? ['project-id'] : [])),
  [`${V1}/project/project-id`]: (_q, s) => (s.account.projectId ? text(s.account.projectId) : notFound()),
  [`${V1}/project/numeric-project-id`]: (_q, s) => (s.account.projectNumber ? text(s.account.projectNumber) : notFound()),
  [`${V1}/universe/`]: () => list('universe-domain'),
  [`${V1}/universe/universe-domain`]: () => text('googleapis.com'),
};

/** The handler for a path, or undefined (404). Directories answer with and without the slash. */
export function route(path: string, s: MetadataSources): Handler | undefined {
  const fixed = FIXED[path] ?? FIXED[`${path}/`];
  if (fixed) return fixed;
  if (!path.startsWith(`${SA_DIR}/`)) return undefined;
  const rest = path.slice(SA_DIR.length + 1);
  const slash = rest.indexOf('/');
  const who = slash < 0 ? rest : rest.slice(0, slash);
  if (who !== 'default' && (s.account.email === undefined || who !== s.account.email)) return undefined;
  const leaf = slash < 0 ? '/' : rest.slice(slash);
  return ACCOUNT[leaf];
}
