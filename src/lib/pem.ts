// A sanity check of PEM secrets before they are handed over, so that a bad secret is one clear
// line at boot (65, naming it) instead of a TLS handshake failure later:
//   - every PEM block is complete (a BEGIN line with its END line) and parses;
//   - every private key matches a certificate among the secrets, CA or not, as soon as there
//     is any certificate (a key with no certificate anywhere, e.g. a signing key, is not
//     checked; a CA bundle with no key is fine; an unrelated key next to a CA-only "server
//     cert" is refused);
//   - no certificate in use is expired or not yet valid: a leaf and its chain (a secret whose
//     first certificate is not a CA) must all be valid; in a CA bundle, an expired root among
//     valid ones is only announced (bundles carry old roots), all of them expired is refused.
//     `allowExpired: true` on the secret turns the refusal into a warning;
//   - a certificate expiring within 7 days, and a private key written readable by group or
//     others, are announced.
// A secret is PEM when a line starts with "-----BEGIN ": a JSON service-account key holds its
// PEM inside a string (no such line) and is left alone.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { dataError } from './errors.ts';
import type { Log } from './log.ts';

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----\r?$/gm;
export const WEEK_MS = 7 * 24 * 3600 * 1000;

export interface PemSecret {
  name: string;
  data: Buffer;
  /** The file it is written to, in the output directory (for the key-mode warning). */
  file?: string | undefined;
  mode?: number | undefined;
  /** secrets.NAME.allowExpired: an expired or not yet valid certificate is announced, not refused. */
  allowExpired?: boolean | undefined;
}

interface Parsed {
  secret: PemSecret;
  certs: X509Certificate[];
  keys: KeyObject[];
}

/** The PEM blocks of `text`; a BEGIN line without its END line (before the next BEGIN) is an error. */
function blocks(name: string, text: string): { label: string; pem: string }[] {
  const begins = [...text.matchAll(BEGIN)];
  return begins.map((m, i) => {
    const label = m[1]!;
    const endLine = `-----END ${label}-----`;
    const end = text.indexOf(endLine, m.index);
    const next = begins[i + 1]?.index ?? text.length;
    if (end < 0 || end > next) throw dataError(`secret ${name}: a ${label} block has no END line (the PEM is cut off or corrupted)`);
    return { label, pem: text.slice(m.index, end + endLine.length) };
  });
}

function parse(secret: PemSecret): Parsed | undefined {
  const found = blocks(secret.name, secret.data.toString('latin1'));
  if (found.length === 0) return undefined;
  const parsed: Parsed = { secret, certs: [], keys: [] };
  for (const { label, pem } of found) {
    if (label === 'CERTIFICATE') {
      try {
        parsed.certs.push(new X509Certificate(pem));
      } catch {
        throw dataError(`secret ${secret.name}: a CERTIFICATE block does not parse (truncated or corrupted PEM)`);
      }
    } else if (label.endsWith('PRIVATE KEY')) {
      try {
        parsed.keys.push(createPrivateKey({ key: pem, format: 'pem' }));
      } catch {
        const encrypted = label.includes('ENCRYPTED') || /Proc-Type: 4,ENCRYPTED/.test(pem);
        throw dataError(`secret ${secret.name}: the private key does not parse${encrypted ? ' (it is encrypted: store it unencrypted in Secret Manager)' : ''}`);
      }
    }
  }
  return parsed;
}

const subjectOf = (cert: X509Certificate) => cert.subject.replace(/\n/g, ', ');

/** Why `cert` cannot be used at `now`, or undefined. */
function invalidity(cert: X509Certificate, now: number): string | undefined {
  if (Date.parse(cert.validTo) <= now) return `expired on ${cert.validTo}`;
  if (Date.parse(cert.validFrom) > now) return `is not valid before ${cert.validFrom}`;
  return undefined;
}

function checkValidity(p: Parsed, log: Log, now: number): void {
  const { name, allowExpired } = p.secret;
  const invalid = p.certs.flatMap((cert) => {
    const why = invalidity(cert, now);
    return why ? [{ subject: subjectOf(cert), why }] : [];
  });
  const bundle = p.certs[0]?.ca === true;
  const refuse = invalid.length > 0 && (!bundle || invalid.length === p.certs.length);
  for (const { subject, why } of invalid) {
    const line = `secret ${name}: certificate "${subject}" ${why}`;
    if (refuse && !allowExpired) throw dataError(`${line}: renew it (or set secrets.${name}.allowExpired: true to use it anyway)`);
    log.warn({ secret: name, subject }, `${line}${refuse ? ' (allowed by secrets.' + name + '.allowExpired)' : ' (an old root in a CA bundle: not used)'}`);
  }
  for (const cert of p.certs) {
    const expires = Date.parse(cert.validTo);
    if (expires > now && expires - now < WEEK_MS) log.warn({ secret: name, subject: subjectOf(cert), validTo: cert.validTo }, `secret ${name}: certificate "${subjectOf(cert)}" expires on ${cert.validTo}, within 7 days`);
  }
}

function matches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false; // a key of another type
  }
}

function warnReadableKey(p: Parsed, log: Log): void {
  const { name, file, mode } = p.secret;
  if (p.keys.length === 0 || file === undefined || mode === undefined || (mode & 0o077) === 0) return;
  const who = mode & 0o007 ? 'everyone' : 'its group';
  log.warn({ secret: name, file, mode: `0${mode.toString(8)}` }, `secret ${name}: private key file ${file} is readable by ${who} (mode 0${mode.toString(8)}); use "0400" unless another user must read it`);
}

/**
 * When the first certificate in a secret stops being valid (ms since the epoch), or undefined
 * for a secret without certificates (or one that does not parse: the checks say why elsewhere).
 */
export function certificateExpiry(name: string, data: Buffer): number | undefined {
  try {
    const certs = parse({ name, data })?.certs ?? [];
    return certs.length ? Math.min(...certs.map((c) => Date.parse(c.validTo))) : undefined;
  } catch {
    return undefined;
  }
}

export function checkPemSecrets(secrets: PemSecret[], log: Log, now = Date.now()): void {
  const parsed = secrets.map(parse).filter((p): p is Parsed => p !== undefined);
  for (const p of parsed) checkValidity(p, log, now);
  const certs = parsed.flatMap((p) => p.certs.map((cert) => ({ name: p.secret.name, cert })));
  if (certs.length > 0) {
    const holders = [...new Set(certs.map((c) => c.name))].join(', ');
    for (const p of parsed) {
      for (const key of p.keys) {
        if (!certs.some((c) => matches(c.cert, key))) {
          throw dataError(`secret ${p.secret.name}: private key matches no certificate among the secrets (${holders}): a key and certificate from different pairs?`);
        }
      }
    }
  }
  for (const p of parsed) warnReadableKey(p, log);
}
