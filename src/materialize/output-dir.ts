// The directory that holds the secrets as files: on tmpfs, 0700, created by us, locked, wiped
// on exit. It is held by a file descriptor from creation to wipe and never found by path again
// (dir-fd.ts, wipe.ts): the child owns it and may rename it or what is in it.
import { randomBytes } from 'node:crypto';
import {
  closeSync, constants, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync,
  readdirSync, rmdirSync, statfsSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Cleanup } from '../lib/cleanup.ts';
import { configError, InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { libc } from '../lib/libc.ts';
import { at, DIR_FLAGS, fdPath, requireProc } from './dir-fd.ts';
import { Generations, type SecretFile } from './generations.ts';
import { checkName, writeNewFile, type Written } from './new-file.ts';
import { wipeEntries, zeroFd, type WipeScope } from './wipe.ts';

export type { SecretFile } from './generations.ts';

const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;
/** Where a fresh directory goes when output.dir is unset. */
export const FRESH_PARENT = '/dev/shm';

/** A fresh output directory's path: a random name under FRESH_PARENT, created exclusively. */
export function freshDirName(): string {
  return join(FRESH_PARENT, `tee-init-${randomBytes(6).toString('base64url')}`);
}
/** A child still writing while the wipe runs gets this many passes, then a warning. */
const WIPE_PASSES = 3;

export interface OutputDirOptions {
  /** output.dir; unset: a fresh directory under FRESH_PARENT. */
  dir?: string | undefined;
  /** The fresh directory's path the plan chose (output.dir unset): created exclusively. */
  fresh?: string | undefined;
  allowNonTmpfs: boolean;
  /** uid/gid to give the directory and files; only applied when running as root. */
  owner?: { uid: number; gid: number } | undefined;
}

/** What create() opened: the directory, and (when we made it) its parent, to remove it by name. */
interface Held {
  path: string;
  fd: number;
  parentFd: number;
  name: string;
  created: boolean;
}

/**
 * Files are created with O_CREAT|O_EXCL|O_NOFOLLOW at the directory's fd: a file or symlink
 * already in the way is an error, never a target. The O_RDWR fd of every file written stays
 * open until the wipe, which zeroes the bytes written and truncates the file through it
 * (wherever the child moved or linked it), then empties the directory from its fd and removes it by name only if
 * that name still refers to it. An flock on the directory's fd (released by the kernel when
 * the init dies) keeps a second init out of it.
 */
export class OutputDir {
  readonly path: string;
  readonly #held: Held;
  readonly #dev: number;
  readonly #ino: number;
  readonly #owner: { uid: number; gid: number } | undefined;
  readonly #log: Log;
  /** The rendered files this init wrote, open for writing until the wipe. */
  readonly #written: Written[] = [];
  /** The secret files, in generations behind ..data (generations.ts). */
  readonly #generations: Generations;
  #wiped = false;

  private constructor(held: Held, owner: OutputDirOptions['owner'], log: Log) {
    this.path = held.path;
    this.#held = held;
    const st = fstatSync(held.fd);
    this.#dev = st.dev;
    this.#ino = st.ino;
    this.#owner = owner;
    this.#log = log;
    this.#generations = new Generations({ dirFd: held.fd, path: held.path, dev: st.dev, owner, log });
  }

  static create(options: OutputDirOptions, cleanup: Cleanup, log: Log): OutputDir {
    const owner = effectiveOwner(options.owner);
    const held = options.dir === undefined ? freshDir(options.fresh ?? freshDirName()) : openOrMake(options.dir, owner);
    const out = new OutputDir(held, owner, log);
    cleanup.add('wipe the output directory', () => out.wipe());
    try {
      out.#checkFilesystem(options.allowNonTmpfs);
      if (owner) fchownSync(held.fd, owner.uid, owner.gid);
      log.debug({ dir: held.path, created: held.created, owner }, 'output directory ready');
      return out;
    } catch (err) {
      out.wipe();
      throw err;
    }
  }

  #checkFilesystem(allowNonTmpfs: boolean): void {
    const type = statfsSync(fdPath(this.#held.fd)).type;
    if (type === TMPFS_MAGIC || type === RAMFS_MAGIC) return;
    if (allowNonTmpfs) {
      this.#log.warn({ dir: this.path }, `output.dir ${this.path} is not on tmpfs: secrets will be written to a persistent filesystem (output.allowNonTmpfs)`);
      return;
    }
    throw configError(notTmpfs(this.path, type));
  }

  /** Path of `name` in the directory (whether or not written yet), for the child. */
  pathOf(name: string): string {
    return join(this.path, name);
  }

  /**
   * Writes `data` to a new plain file OUT/NAME (rendered files), sets mode and owner, and checks
   * all three on the open file.
   */
  write(name: string, data: Buffer, mode: number, what: string): string {
    this.#checkNotWiped(what);
    checkName(name, what);
    const file = this.pathOf(name);
    writeNewFile(this.#held.fd, name, file, data, mode, this.#owner, what, this.#written);
    this.#log.debug({ file, mode: `0${mode.toString(8)}`, bytes: data.length }, `wrote ${what}`);
    return file;
  }

  /**
   * Writes every secret file into a fresh generation directory, makes sure each OUT/NAME is the
   * symlink to ..data/NAME, then points ..data at the new generation with one rename(2).
   * Returns the visible path (OUT/NAME) by file name. On failure nothing changes for readers:
   * the half-written generation is zeroed and removed, and the error is thrown. No files, no
   * generation (and no ..data).
   */
  publish(files: readonly SecretFile[]): Map<string, string> {
    this.#checkNotWiped(files[0]?.what ?? 'secret files');
    return this.#generations.publish(files);
  }

  /** Zeroes (through the kept fds) and removes every generation except the current one. Idempotent. */
  retireOld(): void {
    if (!this.#wiped) this.#generations.retireOld();
  }

  /** How many generations exist (current + not yet retired). */
  get generations(): number {
    return this.#generations.count;
  }

  #checkNotWiped(what: string): void {
    // A bootstrap aborted by a signal may still be running when the directory has been wiped.
    if (this.#wiped) throw new InitError(EXIT.software, `${what}: output directory already wiped`);
  }

  /**
   * Zeroes every file this init wrote (through its fd), empties the directory (through its fd),
   * removes it if we made it and it is still where we made it, and releases the lock. Idempotent.
   */
  wipe(): void {
    if (this.#wiped) return;
    this.#wiped = true;
    const { fd, path } = this.#held;
    for (const f of this.#written.splice(0)) {
      try {
        zeroFd(f.fd, f.size);
      } catch (err) {
        this.#log.error({ dir: path, err }, `wipe of ${path}: a secret file cannot be zeroed (${(err as NodeJS.ErrnoException).code})`);
      } finally {
        closeSync(f.fd);
      }
    }
    const scope: WipeScope = { uid: this.#owner?.uid ?? process.getuid!(), dev: this.#dev, log: this.#log, path };
    let count = 0;
    let removedDir = false;
    try {
      count += this.#generations.wipeAll(scope);
      let left: string[] = [];
      for (let pass = 0; pass < WIPE_PASSES; pass++) {
        count += wipeEntries(fd, scope);
        left = readdirSync(fdPath(fd));
        if (left.length === 0) break;
      }
      if (left.length > 0) this.#log.warn({ dir: path, left: left.slice(0, 10) }, `wipe of ${path}: ${left.length} entries could not be removed (a process still writing there?)`);
      removedDir = left.length === 0 && this.#removeSelf();
      if (!removedDir) this.#takeBack();
    } finally {
      closeSync(fd); // releases the lock
      closeSync(this.#held.parentFd);
    }
    this.#log.debug({ dir: path, files: count, removedDir }, 'output directory wiped');
  }

  /**
   * A directory that stays (a mount point we were given, or one we could not remove) goes back
   * to tee-init's uid and 0700, as we found or made it: the next boot on it (a restarted
   * container on the same tmpfs) finds it as its own, and whatever of the child still runs can
   * no longer write there.
   */
  #takeBack(): void {
    if (!this.#owner) return;
    try {
      fchownSync(this.#held.fd, process.geteuid!(), process.getegid!());
      fchmodSync(this.#held.fd, 0o700);
    } catch (err) {
      this.#log.warn({ dir: this.path, err }, `wipe of ${this.path}: cannot give the directory back to tee-init (${(err as NodeJS.ErrnoException).code}); the next boot on it will refuse it`);
    }
  }

  /** rmdir by name in the parent we made it in, only while that name is still this directory. */
  #removeSelf(): boolean {
    const { parentFd, name, path, created } = this.#held;
    if (!created) return false;
    let here = false;
    try {
      const st = lstatSync(at(parentFd, name));
      here = st.ino === this.#ino && st.dev === this.#dev;
    } catch {
      // gone: moved away (below)
    }
    if (!here) {
      this.#log.warn({ dir: path }, `output directory ${path} was moved away while in use: its content is wiped, the empty directory stays wherever it was moved`);
      return false;
    }
    try {
      rmdirSync(at(parentFd, name));
      return true;
    } catch (err) {
      // Something made an entry after the wipe's last pass (a process still writing there).
      const left = readdirSync(fdPath(this.#held.fd));
      this.#log.warn({ dir: path, left: left.slice(0, 10), code: (err as NodeJS.ErrnoException).code }, `wipe of ${path}: ${left.length} entries could not be removed (made after the wipe: a process still writing there?)`);
      return false;
    }
  }
}

function effectiveOwner(owner: OutputDirOptions['owner']): OutputDirOptions['owner'] {
  if (!owner) return undefined;
  const uid = process.getuid?.();
  if (uid === 0) return owner;
  if (owner.uid === uid) return undefined; // already ours
  throw configError(`output.owner (uid ${owner.uid}) needs tee-init to run as root; it runs as uid ${uid}`);
}

/**
 * The parent is opened once, before any child exists: a symlink in its chain (/var/run -> /run)
 * is followed then, never again. Everything after that happens at the parent's fd.
 */
function openParent(parent: string, dir: string | undefined): number {
  try {
    const fd = openSync(parent, constants.O_RDONLY | constants.O_DIRECTORY);
    requireProc(fd);
    return fd;
  } catch (err) {
    if (err instanceof InitError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (dir === undefined) throw configError(`output.dir is not set and ${parent} cannot be opened (${code}): set output.dir to a tmpfs path`);
    if (code === 'ENOENT') throw configError(`output.dir ${dir}: its parent ${parent} does not exist`);
    if (code === 'ENOTDIR') throw configError(`output.dir ${dir}: its parent ${parent} is not a directory`);
    throw configError(`output.dir ${dir}: its parent ${parent} cannot be opened (${code})`);
  }
}

/** Opens the directory `name` at `parentFd` without following a symlink, and takes its lock. */
function openAndLock(parentFd: number, name: string, path: string): number {
  let fd: number;
  try {
    fd = openSync(at(parentFd, name), DIR_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw configError(`output.dir ${path} exists and is not a directory (a symlink or file is in the way)`);
    throw configError(`output.dir ${path} cannot be opened (${code})`);
  }
  if (!libc().lockExclusive(fd)) {
    closeSync(fd);
    throw configError(`output.dir ${path} is in use by another tee-init (it holds the directory's lock): give each init its own output.dir`);
  }
  return fd;
}

/** Creates the fresh directory `path` (its name chosen at random by the plan), exclusively. */
function freshDir(path: string): Held {
  const parent = dirname(path);
  const name = basename(path);
  const parentFd = openParent(parent, undefined);
  try {
    try {
      mkdirSync(at(parentFd, name), { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw configError(`output.dir is not set and a directory cannot be created in ${parent} (${code}): set output.dir to a tmpfs path`);
    }
    const fd = openAndLock(parentFd, name, path);
    fchmodSync(fd, 0o700); // umask
    return { path, fd, parentFd, name, created: true };
  } catch (err) {
    closeSync(parentFd);
    throw err;
  }
}

/**
 * Creates `path` (0700), or accepts an existing one only if it is really a directory (not a
 * symlink), empty, not locked by another init (a tmpfs mount point prepared for us), and ours:
 * tee-init's uid, or output.owner's (it gets the directory anyway, and an init killed between
 * its wipe and giving the directory back leaves it so). The checks run on the open, locked
 * directory, not on the path.
 */
function openOrMake(path: string, owner: OutputDirOptions['owner']): Held {
  const name = basename(path);
  if (name === '' || name === '.' || name === '..') throw configError(`output.dir ${path} must name a directory (not / or a path ending in . or ..)`);
  const parentFd = openParent(dirname(path), path);
  let fd: number | undefined;
  try {
    let created = true;
    try {
      mkdirSync(at(parentFd, name), { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw configError(`output.dir ${path} cannot be created (${code})`);
      created = false;
    }
    fd = openAndLock(parentFd, name, path);
    if (!created) {
      const st = fstatSync(fd);
      const why = existingProblem(path, readdirSync(fdPath(fd)).length, st.uid, owner);
      if (why) throw configError(why);
    }
    fchmodSync(fd, 0o700);
    return { path, fd, parentFd, name, created };
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    closeSync(parentFd);
    throw err;
  }
}

const notTmpfs = (path: string, type: number) =>
  `output.dir ${path} is not on tmpfs (filesystem type 0x${type.toString(16)}): secrets must not touch a disk; mount a tmpfs there (podman run --tmpfs DIR, or --shm-size) or use /dev/shm`;

/** An existing output.dir is accepted only empty and ours (or output.owner's). */
function existingProblem(path: string, entries: number, uid: number, owner: OutputDirOptions['owner']): string | undefined {
  if (entries > 0) return `output.dir ${path} exists and is not empty: tee-init writes only into a fresh or empty directory`;
  const ours = [process.geteuid!(), ...(owner ? [owner.uid] : [])];
  if (ours.includes(uid)) return undefined;
  const who = `tee-init (uid ${ours[0]})${owner ? ` or to output.owner (uid ${owner.uid})` : ''}`;
  return `output.dir ${path} exists and belongs to uid ${uid}, not to ${who}: something else prepared it; remove it or chown it to uid ${ours[0]}`;
}

/**
 * What create() would refuse, found without creating anything (the plan: check and the boot
 * before its first network call): the owner it cannot give, a missing parent, something not a
 * directory in the way, a directory not empty, someone else's, locked by another init, or not on
 * tmpfs. create() still checks all of it again on what it opens.
 */
export function outputDirProblem(options: OutputDirOptions): InitError | undefined {
  try {
    const owner = effectiveOwner(options.owner);
    const path = options.dir;
    if (path === undefined) {
      closeSync(openParent(FRESH_PARENT, undefined));
      return fsProblem(FRESH_PARENT, options.allowNonTmpfs);
    }
    const name = basename(path);
    if (name === '' || name === '.' || name === '..') throw configError(`output.dir ${path} must name a directory (not / or a path ending in . or ..)`);
    closeSync(openParent(dirname(path), path));
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return fsProblem(dirname(path), options.allowNonTmpfs, path); // made there: the parent's filesystem
    }
    if (!st.isDirectory()) throw configError(`output.dir ${path} exists and is not a directory (a symlink or file is in the way)`);
    const fd = openSync(path, DIR_FLAGS);
    try {
      if (!libc().lockExclusive(fd)) throw configError(`output.dir ${path} is in use by another tee-init (it holds the directory's lock): give each init its own output.dir`);
      const why = existingProblem(path, readdirSync(fdPath(fd)).length, st.uid, owner);
      if (why) throw configError(why);
    } finally {
      closeSync(fd); // the lock goes with it
    }
    return fsProblem(path, options.allowNonTmpfs);
  } catch (err) {
    if (err instanceof InitError) return err;
    return configError(`output.dir ${options.dir ?? FRESH_PARENT} cannot be checked (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function fsProblem(where: string, allowNonTmpfs: boolean, path = where): InitError | undefined {
  if (allowNonTmpfs) return undefined;
  const type = statfsSync(where).type;
  return type === TMPFS_MAGIC || type === RAMFS_MAGIC ? undefined : configError(notTmpfs(path, type));
}
