// The headers that tell the backend who the client is (reference/traffic.md §4):
// X-Forwarded-Client-Cert in Envoy's format, and RFC 9440 Client-Cert.
import type { PeerIdentity } from './identity.ts';

export const XFCC = 'x-forwarded-client-cert';
export const CLIENT_CERT = 'client-cert';
export const CLIENT_CERT_CHAIN = 'client-cert-chain';

/** Envoy quotes a value holding `,` `;` `=` or `"`, and escapes `"` inside. */
function value(v: string): string {
  return /[,;="]/.test(v) ? `"${v.replace(/(["\\])/g, '\\$1')}"` : v;
}

/** `By=<our URI SAN>;Hash=<sha256 hex>;Subject="...";URI=...;DNS=...;DNS=...` (one element). */
export function xfccElement(client: PeerIdentity, own: PeerIdentity | undefined): string {
  const pairs: [string, string][] = [];
  if (own?.uris[0]) pairs.push(['By', value(own.uris[0])]);
  pairs.push(['Hash', client.hash]);
  // Envoy always quotes the subject.
  pairs.push(['Subject', `"${client.subject.replace(/(["\\])/g, '\\$1')}"`]);
  for (const u of client.uris) pairs.push(['URI', value(u)]);
  for (const d of client.dns) pairs.push(['DNS', value(d)]);
  return pairs.map(([k, v]) => `${k}=${v}`).join(';');
}

/** RFC 9440: the DER as a byte sequence (RFC 8941): `:base64:`. */
export function clientCertHeader(client: PeerIdentity): string {
  return `:${client.der.toString('base64')}:`;
}
