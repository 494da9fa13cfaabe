// Who a peer is, from its certificate: the SANs that carry identities (URI for SPIFFE, DNS),
// the subject, and the SHA-256 of the DER (XFCC's Hash). Rules of an allow-list match one of
// them exactly or by prefix (reference/traffic.md §4: authorise by SAN, not by CN).
import { createHash, type X509Certificate } from 'node:crypto';

export interface PeerIdentity {
  /** Hex SHA-256 of the certificate's DER. */
  hash: string;
  /** RFC 2253 order (most specific first), as Envoy prints it: "CN=client,O=Org". */
  subject: string;
  uris: string[];
  dns: string[];
  der: Buffer;
}

export type Match = string | { exact: string } | { prefix: string };
export type PeerRule = { uri: Match } | { dns: Match } | { subject: string };

export function peerIdentity(cert: X509Certificate): PeerIdentity {
  const sans = parseSans(cert.subjectAltName);
  return {
    hash: createHash('sha256').update(cert.raw).digest('hex'),
    subject: rfc2253(cert.subject),
    uris: sans.filter(([k]) => k === 'URI').map(([, v]) => v),
    dns: sans.filter(([k]) => k === 'DNS').map(([, v]) => v),
    der: cert.raw,
  };
}

/**
 * Node prints a DN one RDN a line, in certificate order, a multi-valued RDN as `CN=a + OU=b`;
 * RFC 2253 (and OpenSSL's XN_FLAG_RFC2253, so Envoy) reverses both and joins with `,` and `+`.
 * Node escapes a `+` or `,` inside a value, so the separators are unambiguous.
 */
function rfc2253(nodeSubject: string): string {
  return nodeSubject.split('\n').reverse().map((rdn) => rdn.split(' + ').reverse().join('+')).join(',');
}

/**
 * Node prints SANs as `DNS:a, URI:spiffe://x, IP Address:1.2.3.4`, with a value JSON-quoted
 * when it holds a comma or a quote (so a crafted SAN cannot pose as two).
 */
export function parseSans(text: string | undefined): [string, string][] {
  const out: [string, string][] = [];
  if (!text) return out;
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null && m[0] !== '') {
    out.push([m[1]!, unquote(m[2]!)]);
  }
  return out;
}

/** Node's quoting is JSON's; a value it ever quotes otherwise is kept as printed rather than thrown on. */
function unquote(raw: string): string {
  if (!raw.startsWith('"')) return raw;
  try {
    return JSON.parse(raw) as string;
  } catch {
    return raw;
  }
}

function matchOne(m: Match, value: string): boolean {
  if (typeof m === 'string') return value === m;
  return 'exact' in m ? value === m.exact : value.startsWith(m.prefix);
}

export function ruleMatches(rule: PeerRule, id: PeerIdentity): boolean {
  if ('uri' in rule) return id.uris.some((u) => matchOne(rule.uri, u));
  if ('dns' in rule) return id.dns.some((d) => matchOne(rule.dns, d));
  return id.subject === rule.subject;
}

// A certificate can carry a 50 KiB subject or a thousand SANs: a log line (rate-limited, but on a
// serial console) carries enough to recognise the peer, and the hash that names it exactly.
const MAX_FIELD_CHARS = 256;
const MAX_SANS = 8;

function short(v: string): string {
  return v.length <= MAX_FIELD_CHARS ? v : `${v.slice(0, MAX_FIELD_CHARS)}…(${v.length} chars)`;
}

function shortList(vs: string[]): string[] {
  const out = vs.slice(0, MAX_SANS).map(short);
  if (vs.length > MAX_SANS) out.push(`…(${vs.length} in all)`);
  return out;
}

/** Fields for a log line: who the peer says it is (never the certificate itself), each value bounded. */
export function identityFields(id: PeerIdentity | undefined): Record<string, unknown> {
  if (!id) return {};
  return { subject: short(id.subject), ...(id.uris.length ? { uri: shortList(id.uris) } : {}), ...(id.dns.length ? { dns: shortList(id.dns) } : {}), certSha256: id.hash };
}
