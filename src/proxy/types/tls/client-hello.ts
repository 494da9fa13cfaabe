// The ALPN protocols a client offers, read from its ClientHello before any TLS server sees it.
// Why: Node's TLS server either selects a protocol or ends the handshake with a fatal
// no_application_protocol alert (RFC 7301); it cannot "not answer". A listener that offers
// `tee-attest/1` must stay exactly as it was for every client that does not ask for it, so the
// init looks at the offer first and hands the connection to the TLS server that fits.
// sniff.ts's peek() reads the bytes and puts them back: TLS sees the connection from its first byte.
/** A ClientHello fits in one record in practice; one record is at most 16 KiB + its header. */
const MAX_RECORD = 5 + 16_384;

/**
 * The ALPN protocol names in `bytes` (the start of a connection), `[]` when the hello offers
 * none or cannot be read as one, or undefined when more bytes are needed.
 */
export function offeredAlpn(bytes: Buffer): string[] | undefined {
  if (bytes.length < 5) return undefined;
  if (bytes[0] !== 0x16) return [];
  const recordLength = bytes.readUInt16BE(3);
  if (bytes.length < 5 + recordLength) return bytes.length >= MAX_RECORD ? [] : undefined;
  try {
    return alpnOf(bytes.subarray(5, 5 + recordLength));
  } catch {
    return []; // not a ClientHello we can read: the TLS server will say what is wrong with it
  }
}

/** Walks a handshake message: ClientHello (RFC 8446 §4.1.2), extensions, ALPN (RFC 7301 §3.1). */
function alpnOf(h: Buffer): string[] {
  const r = reader(h);
  if (r.u8() !== 1) return []; // not a ClientHello
  r.skip(3); // handshake length (the record bounds us)
  r.skip(2 + 32); // legacy_version, random
  r.skip(r.u8()); // legacy_session_id
  r.skip(r.u16()); // cipher_suites
  r.skip(r.u8()); // legacy_compression_methods
  const end = r.at() + r.u16();
  while (r.at() + 4 <= end) {
    const type = r.u16();
    const len = r.u16();
    if (type !== 0x0010) {
      r.skip(len);
      continue;
    }
    const listEnd = r.at() + r.u16();
    const out: string[] = [];
    while (r.at() < listEnd) out.push(r.bytes(r.u8()).toString('latin1'));
    return out;
  }
  return [];
}

function reader(b: Buffer) {
  let i = 0;
  const need = (n: number) => {
    if (i + n > b.length) throw new RangeError('short ClientHello');
  };
  return {
    at: () => i,
    u8: () => (need(1), b[i++]!),
    u16: () => (need(2), (i += 2), b.readUInt16BE(i - 2)),
    skip: (n: number) => (need(n), (i += n)),
    bytes: (n: number) => (need(n), (i += n), b.subarray(i - n, i)),
  };
}
