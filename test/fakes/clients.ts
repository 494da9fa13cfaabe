// The real Google clients, pointed at the fakes the way tee-init points them (REST fallback,
// plain http to loopback), for the fakes' own tests and for integration tests.
import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { IdentityPoolClient, type AuthClient } from 'google-auth-library';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExternalAccountConfig } from './world.ts';

// The libraries honour HTTPS_PROXY/HTTP_PROXY and do not exempt loopback by themselves.
process.env.NO_PROXY = [process.env.NO_PROXY, '127.0.0.1,localhost'].filter(Boolean).join(',');

export function authClient(config: ExternalAccountConfig): IdentityPoolClient {
  return new IdentityPoolClient(config);
}

export function secretClient(port: number, auth: AuthClient): SecretManagerServiceClient {
  return new SecretManagerServiceClient({ authClient: auth, apiEndpoint: '127.0.0.1', port, protocol: 'http', fallback: true });
}

/** The rejection of `promise` (fails if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection, got a result');
}

/** A loopback port nobody listens on (and no client holds a pooled connection to). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
