// A sanity check of PEM secrets before they are handed over: certificates parse, private keys
// parse, a private key matches a certificate among the secrets, and a certificate about to
// expire is announced. Catching a swapped key or a truncated cert here gives one clear line at
// boot instead of a TLS handshake failure later.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { dataError } from '../errors.ts';
import type { Log } from '../log.ts';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
const WEEK_MS = 7 * 24 * 3600 * 1000;

interface Parsed {
  name: string;
  certs: X509Certificate[];
  /** The first certificate of a file when it is not a CA: the one a key should match. */
  leaves: X509Certificate[];
  keys: KeyObject[];
}

function parse(name: string, data: Buffer): Parsed | undefined {
  const text = data.toString('latin1');
  if (!text.trimStart().startsWith('-----BEGIN ')) return undefined;
  const parsed: Parsed = { name, certs: [], leaves: [], keys: [] };
  let first = true;
  for (const m of text.matchAll(BLOCK)) {
    const label = m[1]!;
    if (label === 'CERTIFICATE') {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(m[0]);
      } catch {
        throw dataError(`secret ${name}: a CERTIFICATE block does not parse (truncated or corrupted PEM)`);
      }
      if (first && !cert.ca) parsed.leaves.push(cert);
      first = false;
      parsed.certs.push(cert);
    } else if (label.endsWith('PRIVATE KEY')) {
      try {
        parsed.keys.push(createPrivateKey({ key: m[0], format: 'pem' }));
      } catch {
        const encrypted = label.includes('ENCRYPTED') || /Proc-Type: 4,ENCRYPTED/.test(m[0]);
        throw dataError(`secret ${name}: the private key does not parse${encrypted ? ' (it is encrypted: store it unencrypted in Secret Manager)' : ''}`);
      }
    }
  }
  return parsed;
}

export function checkPemSecrets(secrets: { name: string; data: Buffer }[], log: Log, now = Date.now()): void {
  const parsed = secrets.map((s) => parse(s.name, s.data)).filter((p): p is Parsed => p !== undefined);
  for (const p of parsed) {
    for (const cert of p.certs) {
      const expires = Date.parse(cert.validTo);
      const subject = cert.subject.replace(/\n/g, ', ');
      if (expires <= now) log.error({ secret: p.name, subject, validTo: cert.validTo }, `secret ${p.name}: certificate "${subject}" EXPIRED on ${cert.validTo}`);
      else if (expires - now < WEEK_MS) log.warn({ secret: p.name, subject, validTo: cert.validTo }, `secret ${p.name}: certificate "${subject}" expires on ${cert.validTo}, within 7 days`);
    }
  }
  const leaves = parsed.flatMap((p) => p.leaves.map((cert) => ({ name: p.name, cert })));
  if (leaves.length === 0) return;
  for (const p of parsed) {
    for (const key of p.keys) {
      if (!leaves.some((l) => l.cert.checkPrivateKey(key))) {
        throw dataError(`secret ${p.name}: private key matches no certificate among the secrets (${leaves.map((l) => l.name).join(', ')}): a key and certificate from different pairs?`);
      }
    }
  }
}
