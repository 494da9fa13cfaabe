// Removing what is below the output directory, from its file descriptor only (and zeroing, through
// the fds kept since, the bytes the init wrote).
//
// The child (another uid, not trusted) owns the directory and may have done anything in it:
// renamed the directory, swapped a subdirectory for a symlink while this runs (RENAME_EXCHANGE),
// hard-linked or moved files in or out. The wipe therefore:
//   - never resolves a path: every entry is reached "at" a directory fd (dir-fd.ts), every
//     open is O_NOFOLLOW, a subdirectory is entered only through an fd opened that way;
//   - acts with no more power than the child has over its own tree: it descends only into
//     directories owned by `uid` (the output owner) on the same file system, and only removes
//     names from those directories, which the child could do itself;
//   - writes nothing into what it finds: a file the init did not write is unlinked, never
//     zeroed (its size is the child's to choose: zeroing a 100 GB sparse file would fill the
//     tmpfs);
//   - removes a subdirectory by name only while that name still refers to the directory it
//     emptied.
// The files the init wrote are not found by name at all: output-dir.ts and generations.ts keep
// an fd to each and zero there the bytes written, wherever the child moved or linked it.
import { closeSync, fstatSync, ftruncateSync, lstatSync, openSync, readdirSync, rmdirSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import type { Log } from '../lib/log.ts';
import { at, DIR_FLAGS, fdPath } from './dir-fd.ts';

/** Deeper trees are the child's own, not secrets the init wrote: left with a warning. */
const MAX_DEPTH = 64;
const ZEROS = Buffer.alloc(1 << 16);

export interface WipeScope {
  /** Only directories owned by this uid are entered. */
  uid: number;
  /** The output directory's file system: mount points below it are not entered. */
  dev: number;
  log: Log;
  /** For messages: where the tree was created (the child may have moved it since). */
  path: string;
}

/**
 * Overwrites the `written` bytes the init wrote at the start of the file with zeros, then
 * truncates it to 0, through `fd` (open for writing). Never more than that: the file's size is
 * the child's to set (`truncate -s 100G` makes a sparse file), and zeroing up to it would fill the
 * tmpfs. Whatever the child wrote beyond is freed by the truncation.
 */
export function zeroFd(fd: number, written: number): void {
  const size = Math.min(fstatSync(fd).size, written);
  for (let off = 0; off < size; ) off += writeSync(fd, ZEROS, 0, Math.min(ZEROS.length, size - off), off);
  ftruncateSync(fd, 0);
}

/** Empties the directory held by `dirFd` (not closing it); returns the number of names removed. */
export function wipeEntries(dirFd: number, scope: WipeScope, depth = 0): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(fdPath(dirFd));
  } catch (err) {
    scope.log.warn({ dir: scope.path, err }, `wipe of ${scope.path}: a directory cannot be listed (${(err as NodeJS.ErrnoException).code}); left as is`);
    return 0;
  }
  for (const name of names) {
    const entry = at(dirFd, name);
    let st: Stats;
    try {
      st = lstatSync(entry);
    } catch {
      continue; // gone already
    }
    if (st.isDirectory()) {
      removed += wipeSubdirectory(dirFd, name, st, scope, depth);
      continue;
    }
    try {
      unlinkSync(entry);
      removed++;
    } catch {
      // Replaced by a directory since lstat, or gone: the next pass sees it as it is now.
    }
  }
  return removed;
}

function wipeSubdirectory(parentFd: number, name: string, st: Stats, scope: WipeScope, depth: number): number {
  if (st.dev !== scope.dev || st.uid !== scope.uid || depth >= MAX_DEPTH) {
    const why = st.dev !== scope.dev ? 'another file system is mounted there' : st.uid !== scope.uid ? `it belongs to uid ${st.uid}, not to the output owner` : `deeper than ${MAX_DEPTH} levels`;
    scope.log.warn({ dir: scope.path, entry: name, uid: st.uid }, `wipe of ${scope.path}: subdirectory ${name} is not entered (${why}); left as is`);
    return 0;
  }
  let fd: number;
  try {
    fd = openSync(at(parentFd, name), DIR_FLAGS);
  } catch {
    // Swapped for a symlink or a file since lstat: remove that name, never follow it.
    return unlinkQuietly(at(parentFd, name));
  }
  let removed = 0;
  let opened: Stats;
  try {
    opened = fstatSync(fd);
    if (opened.dev !== scope.dev || opened.uid !== scope.uid) return 0; // swapped for a foreign directory after lstat
    removed = wipeEntries(fd, scope, depth + 1);
  } finally {
    closeSync(fd);
  }
  try {
    const now = lstatSync(at(parentFd, name));
    if (now.ino === opened.ino && now.dev === opened.dev) {
      rmdirSync(at(parentFd, name));
      removed++;
    }
  } catch {
    // Not empty (the child is still writing) or gone: the next pass sees it as it is now.
  }
  return removed;
}

function unlinkQuietly(entry: string): number {
  try {
    unlinkSync(entry);
    return 1;
  } catch {
    return 0;
  }
}
