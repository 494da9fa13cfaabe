// Headers across the egress proxy (RFC 9110 §7.6.1): hop-by-hop ones stay on their hop (both
// fixed names and those the Connection header lists); everything else passes in order, repeats
// kept (rawHeaders, so two Set-Cookie or Cookie lines stay two).

const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
]);

const NONE: ReadonlySet<string> = new Set();

/** Names the Connection header(s) declare hop-by-hop, lowercased; undefined when there is none (most requests). */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    // The length first: this runs on every request and response, and few names are 10 long.
    if (raw[i]!.length !== 10 || raw[i]!.toLowerCase() !== 'connection') continue;
    out ??= new Set();
    for (const t of raw[i + 1]!.split(',')) if (t.trim()) out.add(t.trim().toLowerCase());
  }
  return out;
}

/**
 * The end-to-end headers of `raw` (Node's rawHeaders: name, value, name, value...), without
 * those in `drop` (lowercase names), as a flat list that http.request/writeHead take.
 */
export function endToEnd(raw: readonly string[], drop: ReadonlySet<string> = NONE): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || listed?.has(name) || drop.has(name)) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

export function hasHeader(raw: readonly string[], name: string): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) return true;
  return false;
}

/**
 * Whether a request has no body: no Transfer-Encoding and no Content-Length but 0 (Node's
 * parser has refused conflicting ones). From rawHeaders: `req.headers` is built on first use.
 */
export function bodyless(raw: readonly string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'transfer-encoding' || (name === 'content-length' && raw[i + 1] !== '0')) return false;
  }
  return true;
}
