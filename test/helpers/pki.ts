// A throwaway PKI made with the real openssl: a CA, a server certificate and a client
// certificate signed by it (EC P-256, valid for a day). For the tests and the demo.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface Pki {
  dir: string;
  /** The CA certificate (and its key, to sign more). */
  ca: KeyPair;
  server: KeyPair;
  client: KeyPair;
}

export interface PkiOptions {
  /** Server subjectAltNames; default DNS:localhost, IP:127.0.0.1, IP:::1. */
  serverSans?: readonly string[];
  /** Client subjectAltNames; default URI:spiffe://tee-init.test/client. */
  clientSans?: readonly string[];
  /** Common names; defaults say what each certificate is. */
  caName?: string;
  clientName?: string;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'];

/** Signs a new key pair with the CA (OpenSSL 3: `req -x509 -CA`), with the given extensions. */
export function issue(dir: string, ca: KeyPair, name: string, cn: string, extensions: readonly string[]): KeyPair {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  openssl(['req', '-x509', ...EC, '-keyout', pair.key, '-out', pair.cert, '-subj', `/CN=${cn}`,
    '-CA', ca.cert, '-CAkey', ca.key, ...extensions.flatMap((e) => ['-addext', e])]);
  chmodSync(pair.key, 0o600);
  return pair;
}

/** The extensions of a leaf certificate (serverAuth or clientAuth), for issue(). */
export const leaf = (usage: 'serverAuth' | 'clientAuth', sans: readonly string[]): string[] => [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  `extendedKeyUsage=${usage}`,
  `subjectAltName=${sans.join(',')}`,
];

/** Creates `dir` (if needed) and writes ca.{crt,key}, server.{crt,key}, client.{crt,key} in it. */
export function createPki(dir: string, options: PkiOptions = {}): Pki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  openssl(['req', '-x509', ...EC, '-keyout', ca.key, '-out', ca.cert, '-subj', `/CN=${options.caName ?? 'tee-init test CA'}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  chmodSync(ca.key, 0o600);
  const server = issue(dir, ca, 'server', 'tee-init test server', leaf('serverAuth', options.serverSans ?? ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']));
  const client = issue(dir, ca, 'client', options.clientName ?? 'tee-init test client', leaf('clientAuth', options.clientSans ?? ['URI:spiffe://tee-init.test/client']));
  return { dir, ca, server, client };
}
