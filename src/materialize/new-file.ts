// One secret (or rendered) file created in a directory held by fd: created new, never through
// something already there; mode and owner set on the open file; everything read back.
import { constants, fchmodSync, fchownSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { configError, InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import { at } from './dir-fd.ts';

export type Owner = { uid: number; gid: number } | undefined;

/** A file the init writes, open for the wipe: the bytes it wrote are all the wipe zeroes. */
export interface Written { fd: number; size: number }

/** Names beginning with ".." belong to the generations (..data, ..data_tmp, ..2026_…). */
export function checkName(name: string, what: string): void {
  if (name.startsWith('..')) throw configError(`${what}: file name ${name} begins with "..", which is reserved in the output directory (..data and the secret generations)`);
}

/**
 * Creates `name` at `dirFd` with O_CREAT|O_EXCL|O_NOFOLLOW (a file or symlink already in the way
 * is an error, never a target), writes `data`, sets owner then mode, and verifies all three on
 * the open fd. The O_RDWR fd (and the size it will hold) is pushed to `keep` before the first
 * byte, so that a failure half-way is still zeroed by whoever owns `keep`; it stays open for the wipe.
 * `shown` is the path named in messages.
 */
export function writeNewFile(dirFd: number, name: string, shown: string, data: Buffer, mode: number, owner: Owner, what: string, keep: Written[]): number {
  let fd: number;
  try {
    // libuv adds O_CLOEXEC itself: the child never inherits these fds.
    fd = openSync(at(dirFd, name), constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ELOOP' ? 'something is already in the way (a file or symlink)' : code;
    throw configError(`${what}: cannot create ${shown}: ${why}`);
  }
  keep.push({ fd, size: data.length });
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    fchmodSync(fd, mode); // after chown: chown clears nothing we set, and umask does not apply
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw configError(`${what}: cannot write ${shown}: ${code === 'ENOSPC' ? 'ENOSPC (the output directory\'s tmpfs is full: give it more room)' : code}`);
  }
  verify(fd, shown, data, mode, owner, what);
  return fd;
}

function verify(fd: number, file: string, data: Buffer, mode: number, owner: Owner, what: string): void {
  const st = fstatSync(fd);
  const problems: string[] = [];
  if ((st.mode & 0o7777) !== mode) problems.push(`mode 0${(st.mode & 0o7777).toString(8)} instead of 0${mode.toString(8)}`);
  if (owner && (st.uid !== owner.uid || st.gid !== owner.gid)) problems.push(`owner ${st.uid}:${st.gid} instead of ${owner.uid}:${owner.gid}`);
  if (st.size !== data.length) problems.push(`${st.size} bytes instead of ${data.length}`);
  else {
    const back = Buffer.alloc(data.length);
    readSync(fd, back, 0, data.length, 0);
    if (!back.equals(data)) problems.push('content differs from what was written');
    back.fill(0);
  }
  if (problems.length) throw new InitError(EXIT.software, `${what}: ${file} failed verification: ${problems.join(', ')}`);
}
