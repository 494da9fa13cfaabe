// The TLS material of a listener, from its secrets: one SecureContext (built once, shared by
// every connection; rebuilt on reload) and our own certificate's identity (XFCC's By).
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { dataError } from '../../../lib/errors.ts';
import type { TlsListenerConfig } from '../../../config/listeners/tls.ts';
import { type PeerIdentity, peerIdentity } from './identity.ts';

// TLS 1.2 only with forward secrecy and AEAD; TLS 1.3 suites are all fine.
const TLS12_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

export interface TlsMaterial {
  context: SecureContext;
  /** The options the context was built from (tls.Server#setSecureContext takes options). */
  options: SecureContextOptions;
  own: PeerIdentity;
}

/**
 * Reads cert, key and ca through `secret` (no copy is kept: OpenSSL holds its own) and builds
 * the context. A certificate that does not parse, a key that does not match it, or a CA with
 * no certificate is a data error (65) naming the secret.
 */
export function loadMaterial(c: TlsListenerConfig, secret: (name: string) => Buffer, field: string): TlsMaterial {
  const { cert, key, ca } = c.tls;
  const certPem = secret(cert);
  let own: PeerIdentity;
  try {
    own = peerIdentity(new X509Certificate(certPem));
  } catch {
    throw dataError(`${field}.tls.cert: secret ${cert} is not a PEM certificate`);
  }
  const caPem = secret(ca);
  try {
    new X509Certificate(caPem);
  } catch {
    throw dataError(`${field}.tls.ca: secret ${ca} is not a PEM certificate (the CA that signs the peers)`);
  }
  const options: SecureContextOptions = {
    cert: certPem,
    key: secret(key),
    ca: caPem,
    minVersion: c.tls.tls12 ? 'TLSv1.2' : 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ...(c.tls.tls12 ? { ciphers: TLS12_CIPHERS } : {}),
  };
  let context: SecureContext;
  try {
    context = createSecureContext(options);
  } catch (err) {
    const why = /mismatch/i.test((err as Error).message) ? `does not match the certificate in secret ${cert}` : 'is not a usable PEM private key';
    throw dataError(`${field}.tls.key: secret ${key} ${why}`);
  }
  return { context, options, own };
}
