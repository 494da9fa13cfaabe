// Reading a small file (a secret, the attestation token) that might not be what it claims: at
// most `limit` + 1 bytes, asynchronously, so a SIGTERM still aborts the boot and one byte over
// the limit says "too big" whatever the file's size says (a /proc file that claims 0 bytes, a
// file still growing, a 10 GB sparse file).
import type { FileHandle } from 'node:fs/promises';

/** Up to `limit` + 1 bytes from the start of `file`; more than `limit` means it is too big. */
export async function readAtMost(file: FileHandle, limit: number): Promise<Buffer> {
  const buf = Buffer.alloc(limit + 1);
  let length = 0;
  while (length < buf.length) {
    const { bytesRead } = await file.read(buf, length, buf.length - length, length);
    if (bytesRead === 0) break;
    length += bytesRead;
  }
  return buf.subarray(0, length);
}
