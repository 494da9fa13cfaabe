// CRC32C (Castagnoli), the checksum Secret Manager returns with every payload.
import CRC32C from 'crc-32/crc32c.js';

export function crc32c(data: Uint8Array): number {
  return CRC32C.buf(data) >>> 0;
}

/** True when `expected` (Secret Manager's int64 as a decimal string or number) matches `data`. */
export function crc32cMatches(data: Uint8Array, expected: string | number | bigint | { toString(): string }): boolean {
  try {
    return BigInt(String(expected)) === BigInt(crc32c(data));
  } catch {
    return false;
  }
}
