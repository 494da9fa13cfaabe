// Who a bearer token stands for, how IAM-style grants name principals, and the opaque access
// tokens the fake hands out and later recognises.
import { randomBytes } from 'node:crypto';

export type Principal =
  | { kind: 'federated'; provider: string; pool: string; subject: string }
  | { kind: 'serviceAccount'; email: string };

const IAM = 'iam.googleapis.com';

/** The principal's IAM identifier, as Google logs it. */
export function principalId(p: Principal): string {
  return p.kind === 'federated' ? `principal://${IAM}/${p.pool}/subject/${p.subject}` : `serviceAccount:${p.email}`;
}

/** `projects/N/locations/global/workloadIdentityPools/POOL` of a provider resource name. */
export function poolOf(provider: string): string {
  return provider.replace(/\/providers\/[^/]+$/, '');
}

/**
 * Whether a grant covers a principal. A grant is one of: a provider resource name
 * (`projects/N/locations/global/workloadIdentityPools/POOL/providers/P`: anyone federated
 * through it), `principalSet://iam.googleapis.com/…/workloadIdentityPools/POOL/*`,
 * `principal://iam.googleapis.com/…/subject/SUB`, a service account email or `serviceAccount:EMAIL`.
 */
export function grants(grant: string, p: Principal): boolean {
  if (p.kind === 'serviceAccount') return grant === p.email || grant === `serviceAccount:${p.email}`;
  return (
    grant === p.provider ||
    grant === `principalSet://${IAM}/${p.pool}/*` ||
    grant === principalId(p)
  );
}

interface Issued {
  principal: Principal;
  expiresAt: number;
}

/** The access tokens issued by STS and IAM credentials, and who they belong to. */
export class TokenStore {
  #tokens = new Map<string, Issued>();

  /** Issues an opaque token valid for `lifetimeMs` (server side). */
  issue(principal: Principal, lifetimeMs: number): string {
    const token = `ya29.fake-${randomBytes(24).toString('base64url')}`;
    this.#tokens.set(token, { principal, expiresAt: Date.now() + lifetimeMs });
    return token;
  }

  /** The token's principal, or undefined if unknown or expired. */
  lookup(token: string | undefined): Principal | undefined {
    const issued = token === undefined ? undefined : this.#tokens.get(token);
    return issued && Date.now() < issued.expiresAt ? issued.principal : undefined;
  }

  /** Every token issued so far stops working now. */
  expireAll(): void {
    for (const issued of this.#tokens.values()) issued.expiresAt = 0;
  }
}
