// Reaching entries through a directory file descriptor instead of a path. A path is resolved
// again at every use, and the child may have renamed or replaced any component by then;
// `/proc/self/fd/N/NAME` starts resolution at the directory object that fd N holds (the
// magic link is never re-read from the file system), so NAME is looked up in that very
// directory wherever it has been moved. Plain node:fs calls then act "at" the fd, like
// openat/unlinkat/mkdirat, with NAME a single component and O_NOFOLLOW on every open.
import { constants, existsSync } from 'node:fs';
import { configError } from '../lib/errors.ts';

/** The directory (or file) that `fd` holds, as a path that resolves to exactly that object. */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** Entry `name` of the directory held by `dirFd`; `name` must be one path component. */
export function at(dirFd: number, name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new Error(`not a single path component: ${JSON.stringify(name)}`);
  return `${fdPath(dirFd)}/${name}`;
}

/** Opens a directory without following a symlink in its last component. */
export const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Without /proc nothing here can work: say so once, as a configuration problem. */
export function requireProc(fd: number): void {
  if (!existsSync(fdPath(fd))) throw configError('tee-init needs /proc mounted (it reaches the output directory through /proc/self/fd): run it in a normal container or mount proc');
}
