// The headers that tell the backend who the client is (reference/traffic.md §4):
// X-Forwarded-Client-Cert in Envoy's format, and RFC 9440 Client-Cert.
//
// Every value comes from the client's certificate, which its owner chose: `O=Łódź`, `CN=клиент`,
// a quote, a control character in a URI SAN. A header carries printable ASCII only (node:http
// throws on anything past Latin-1 or on a control character), so each value is encoded first,
// in a form a backend can decode: the subject as RFC 4514 escapes of its UTF-8 bytes (`\C5\81`,
// as OpenSSL's RFC 2253 printing and so Envoy give it), URI and DNS SANs with every byte outside
// printable ASCII as `%XX` (RFC 3986, the URI form of an IRI), and a value holding `,` `;` `=`
// `"` or `\` as an RFC 9110 quoted-string.
import type { PeerIdentity } from './identity.ts';

export const XFCC = 'x-forwarded-client-cert';
export const CLIENT_CERT = 'client-cert';
export const CLIENT_CERT_CHAIN = 'client-cert-chain';

const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, '0');

/** RFC 9110 quoted-string: `"` and `\` escaped with `\`. */
function quoted(v: string): string {
  return `"${v.replace(/(["\\])/g, '\\$1')}"`;
}

/** Envoy quotes a value holding `,` `;` `=` or `"`; a `\` is quoted too, so that it reads back as itself. */
function value(v: string): string {
  return /[,;="\\]/.test(v) ? quoted(v) : v;
}

/**
 * A DN in printable ASCII: each character outside it as RFC 4514 hex pairs of its UTF-8 bytes.
 * Node already escapes the DN specials and control characters (`\,` `\01`); this adds the rest.
 */
export function dnAscii(dn: string): string {
  return dn.replace(/[^\x20-\x7e]/gu, (c) => [...Buffer.from(c, 'utf8')].map((b) => `\\${hex(b)}`).join(''));
}

/**
 * A SAN value in printable ASCII: each character outside it as `%XX`. Node gives a SAN's bytes
 * one per character (IA5String), so a character up to U+00FF is that byte; anything above is
 * taken as UTF-8.
 */
export function sanAscii(v: string): string {
  return v.replace(/[^\x21-\x7e]/gu, (c) => {
    const code = c.codePointAt(0)!;
    const bytes = code <= 0xff ? [code] : [...Buffer.from(c, 'utf8')];
    return bytes.map((b) => `%${hex(b)}`).join('');
  });
}

/** `By=<our URI SAN>;Hash=<sha256 hex>;Subject="...";URI=...;DNS=...;DNS=...` (one element, printable ASCII). */
export function xfccElement(client: PeerIdentity, own: PeerIdentity | undefined): string {
  const pairs: [string, string][] = [];
  if (own?.uris[0]) pairs.push(['By', value(sanAscii(own.uris[0]))]);
  pairs.push(['Hash', client.hash]);
  // Envoy always quotes the subject.
  pairs.push(['Subject', quoted(dnAscii(client.subject))]);
  for (const u of client.uris) pairs.push(['URI', value(sanAscii(u))]);
  for (const d of client.dns) pairs.push(['DNS', value(sanAscii(d))]);
  return pairs.map(([k, v]) => `${k}=${v}`).join(';');
}

/** RFC 9440: the DER as a byte sequence (RFC 8941): `:base64:`. */
export function clientCertHeader(client: PeerIdentity): string {
  return `:${client.der.toString('base64')}:`;
}
