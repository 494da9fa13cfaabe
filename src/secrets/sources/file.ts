// `source: file`: a local file, for runs outside a TEE, the embedded demo and tests.
// Only a regular file is a secret. A symlink to one is followed (podman and Kubernetes mount
// secrets as symlinks into a read-only tree); a FIFO, device, socket or directory is refused
// by stat, before it is opened. The open uses O_NONBLOCK, so a FIFO swapped in after the stat
// cannot hang it, and what was opened is checked again (fstat). The read is asynchronous (a
// SIGTERM still aborts the boot) and bounded: at most the limit + 1 bytes, whatever the file
// claims or grows to (a /proc file that says 0 bytes, a 10 GB sparse file).
import { closeSync, constants, fstatSync, openSync, statSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { configError, dataError, InitError } from '../../lib/errors.ts';
import { EXIT } from '../../lib/exit-codes.ts';
import { MAX_PAYLOAD } from '../limits.ts';
import { readAtMost } from '../../lib/read-bounded.ts';

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

const KINDS: [(s: Stats) => boolean, string][] = [
  [(s) => s.isDirectory(), 'a directory'],
  [(s) => s.isFIFO(), 'a FIFO (named pipe)'],
  [(s) => s.isCharacterDevice(), 'a character device'],
  [(s) => s.isBlockDevice(), 'a block device'],
  [(s) => s.isSocket(), 'a socket'],
];

const field = (name: string) => `secrets.${name}.path`;
const tooBig = (name: string, path: string, size: string) =>
  dataError(`secret ${name} (${path}) is ${size} bytes: more than a secret can hold (64 KiB)`);

function openError(name: string, path: string, err: unknown): InitError {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return configError(`secret ${name}: file ${path} does not exist (${field(name)})`);
    case 'ENOTDIR':
      return configError(`secret ${name}: ${path} is not a path to a file: one of its directories is a file (${field(name)})`);
    case 'EACCES':
    case 'EPERM':
      return configError(`secret ${name}: file ${path} cannot be read by tee-init (uid ${process.getuid?.()}): permission denied (${field(name)})`);
    case 'ELOOP':
      return configError(`secret ${name}: ${path} is a symlink loop (${field(name)})`);
    case 'ENXIO':
      return configError(`secret ${name}: ${path} is a socket or device, not a regular file (${field(name)})`);
    default:
      return new InitError(EXIT.noInput, `secret ${name}: file ${path} cannot be read (${code})`);
  }
}

/** The one rule for what an opened secret file may be, shared by the boot and `tee-init check`. */
function checkOpened(name: string, path: string, st: Stats, limit: number): void {
  if (!st.isFile()) {
    const kind = KINDS.find(([is]) => is(st))?.[1] ?? 'not a regular file';
    throw configError(`secret ${name}: ${path} is ${kind}, not a regular file (${field(name)})`);
  }
  if (st.size > limit) throw tooBig(name, path, String(st.size));
}

/** Reads the secret file at `path` (already absolute) without blocking the event loop. */
export async function readSecretFile(name: string, path: string, limit = MAX_PAYLOAD): Promise<Buffer> {
  let file;
  try {
    // stat first: a device is refused without being opened (opening some has side effects).
    checkOpened(name, path, await stat(path), limit);
    file = await open(path, FLAGS);
  } catch (err) {
    throw err instanceof InitError ? err : openError(name, path, err);
  }
  try {
    checkOpened(name, path, await file.stat(), limit); // again on what was opened: it may have been swapped
    const data = await readAtMost(file, limit);
    if (data.length > limit) {
      data.fill(0);
      throw tooBig(name, path, `more than ${limit}`);
    }
    return data;
  } catch (err) {
    if (err instanceof InitError) throw err;
    throw openError(name, path, err);
  } finally {
    await file.close();
  }
}

/**
 * For `tee-init check`: the file exists, can be opened for reading, is a regular file and not
 * over the limit, exactly as the boot would find it. Nothing is read.
 */
export function checkSecretFile(name: string, path: string, limit = MAX_PAYLOAD): void {
  let fd: number;
  try {
    checkOpened(name, path, statSync(path), limit);
    fd = openSync(path, FLAGS);
  } catch (err) {
    throw err instanceof InitError ? err : openError(name, path, err);
  }
  try {
    checkOpened(name, path, fstatSync(fd), limit);
  } finally {
    closeSync(fd);
  }
}
