// The directory that holds the secrets as files: on tmpfs, 0700, created by us, wiped on exit.
import {
  chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync,
  readdirSync, readSync, rmdirSync, statfsSync, unlinkSync, writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import tmp from 'tmp';
import type { Cleanup } from '../cleanup.ts';
import { configError, InitError } from '../errors.ts';
import { EXIT } from '../exit-codes.ts';
import type { Log } from '../log.ts';

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
const DEFAULT_PARENT = '/dev/shm';

export interface OutputDirOptions {
  dir?: string | undefined;
  allowNonTmpfs: boolean;
  /** uid/gid to give the directory and files; only applied when running as root. */
  owner?: { uid: number; gid: number } | undefined;
}

/**
 * Files are created with O_CREAT|O_EXCL|O_NOFOLLOW: a file or symlink already in the way is an
 * error, never a target. Every file is registered for wiping before it is created, so a failure
 * half-way still leaves nothing behind; wiping overwrites with zeros (on tmpfs that rewrites
 * the very pages), then unlinks, then removes the directory if we created it.
 */
export class OutputDir {
  readonly path: string;
  readonly #created: boolean;
  readonly #owner: { uid: number; gid: number } | undefined;
  readonly #log: Log;
  #wiped = false;

  private constructor(path: string, created: boolean, owner: OutputDirOptions['owner'], log: Log) {
    this.path = path;
    this.#created = created;
    this.#owner = owner;
    this.#log = log;
  }

  static create(options: OutputDirOptions, cleanup: Cleanup, log: Log): OutputDir {
    const owner = effectiveOwner(options.owner);
    let path: string;
    let created: boolean;
    if (options.dir === undefined) {
      path = freshDirUnder(DEFAULT_PARENT);
      created = true;
    } else {
      path = options.dir;
      created = ensureDir(path);
    }
    const out = new OutputDir(path, created, owner, log);
    cleanup.add('wipe the output directory', () => out.wipe());
    try {
      out.#checkFilesystem(options.allowNonTmpfs);
      if (owner) chownPath(path, owner);
      log.debug({ dir: path, created, owner }, 'output directory ready');
      return out;
    } catch (err) {
      out.wipe();
      throw err;
    }
  }

  #checkFilesystem(allowNonTmpfs: boolean): void {
    const type = statfsSync(this.path).type;
    if (type === TMPFS_MAGIC || type === RAMFS_MAGIC) return;
    if (allowNonTmpfs) {
      this.#log.warn({ dir: this.path }, `output.dir ${this.path} is not on tmpfs: secrets will be written to a persistent filesystem (output.allowNonTmpfs)`);
      return;
    }
    throw configError(`output.dir ${this.path} is not on tmpfs (filesystem type 0x${type.toString(16)}): secrets must not touch a disk; mount a tmpfs there (tee-mount) or use /dev/shm`);
  }

  /** Path of `name` in the directory (whether or not written yet). */
  pathOf(name: string): string {
    return join(this.path, name);
  }

  /** Writes `data` to a new file, sets mode and owner, and checks all three on the open file. */
  write(name: string, data: Buffer, mode: number, what: string): string {
    // A bootstrap aborted by a signal may still be running when the directory has been wiped.
    if (this.#wiped) throw new InitError(EXIT.software, `${what}: output directory already wiped`);
    const file = this.pathOf(name);
    let fd: number;
    try {
      fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600) // libuv adds O_CLOEXEC itself;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EEXIST' || code === 'ELOOP' ? 'something is already in the way (a file or symlink)' : code;
      throw configError(`${what}: cannot create ${file}: ${why}`);
    }
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
      if (this.#owner) fchownSync(fd, this.#owner.uid, this.#owner.gid);
      fchmodSync(fd, mode); // after chown: chown clears nothing we set, and umask does not apply
      verify(fd, file, data, mode, this.#owner, what);
    } finally {
      closeSync(fd);
    }
    this.#log.debug({ file, mode: `0${mode.toString(8)}`, bytes: data.length }, `wrote ${what}`);
    return file;
  }

  /** Overwrites and removes everything in the directory, then the directory if we made it. Idempotent. */
  wipe(): void {
    if (this.#wiped) return;
    this.#wiped = true;
    let count = 0;
    try {
      count = wipeTree(this.path);
      if (this.#created) rmdirSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.#log.debug({ dir: this.path, files: count, removedDir: this.#created }, 'output directory wiped');
  }
}

function effectiveOwner(owner: OutputDirOptions['owner']): OutputDirOptions['owner'] {
  if (!owner) return undefined;
  const uid = process.getuid?.();
  if (uid === 0) return owner;
  if (owner.uid === uid) return undefined; // already ours
  throw configError(`output.owner (uid ${owner.uid}) needs tee-init to run as root; it runs as uid ${uid}`);
}

function freshDirUnder(parent: string): string {
  try {
    return tmp.dirSync({ tmpdir: parent, prefix: 'tee-init-', mode: 0o700 }).name;
  } catch (err) {
    throw configError(`output.dir is not set and a directory cannot be created in ${parent} (${(err as NodeJS.ErrnoException).code}): set output.dir to a tmpfs path`);
  }
}

/** Creates `path` (0700); an existing directory is accepted only if empty and really a directory (a tmpfs mount point). */
function ensureDir(path: string): boolean {
  try {
    mkdirSync(path, { mode: 0o700 });
    chmodSync(path, 0o700); // umask
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw configError(`output.dir ${path}: its parent ${dirname(path)} does not exist`);
    if (code !== 'EEXIST') throw configError(`output.dir ${path} cannot be created (${code})`);
  }
  const st = lstatSync(path);
  if (!st.isDirectory()) throw configError(`output.dir ${path} exists and is not a directory (a symlink or file is in the way)`);
  if (readdirSync(path).length > 0) throw configError(`output.dir ${path} exists and is not empty: tee-init writes only into a fresh or empty directory`);
  if (st.uid !== process.getuid?.()) throw configError(`output.dir ${path} exists and belongs to uid ${st.uid}, not to tee-init`);
  chmodSync(path, 0o700);
  return false;
}

function chownPath(path: string, owner: { uid: number; gid: number }): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    fchownSync(fd, owner.uid, owner.gid);
  } finally {
    closeSync(fd);
  }
}

function verify(fd: number, file: string, data: Buffer, mode: number, owner: OutputDirOptions['owner'], what: string): void {
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

/** Zeroes and unlinks every regular file below `dir` (the child may have added some), removes subdirectories. */
function wipeTree(dir: string): number {
  let count = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      count += wipeTree(p);
      rmdirSync(p);
      continue;
    }
    if (entry.isFile()) {
      try {
        const fd = openSync(p, constants.O_WRONLY | constants.O_NOFOLLOW);
        try {
          const size = fstatSync(fd).size;
          const zeros = Buffer.alloc(Math.min(size, 1 << 20));
          for (let off = 0; off < size; ) off += writeSync(fd, zeros, 0, Math.min(zeros.length, size - off), off);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch {
        // Not writable or already gone: removing it is still right.
      }
    }
    unlinkSync(p);
    count++;
  }
  return count;
}
