// Secret files in generations, reached through symlinks, like a Kubernetes secret volume
// (docs/operations.md "Secret files: generations behind `..data`"):
//     OUT/NAME   -> ..data/NAME          (made once, never changes)
//     OUT/..data -> ..2026_12_01_22_50_01.123456789
//     OUT/..2026_12_01_22_50_01.123456789/NAME   (the real file)
// A publish writes a complete new generation, then replaces ..data with one rename(2): a reader
// that resolves OUT/NAME sees a whole old file or a whole new one, and a reader that opens
// OUT/..data once sees one generation's set. Everything is done at directory fds held since the
// directory was made (dir-fd.ts); the child owns the directory and may have replaced any name
// in it, so nothing here follows a symlink, and names are removed only while they still are
// the object the init made (dev/ino). Secret files are zeroed through the fds kept since their
// creation, wherever the child moved or linked them.
import { closeSync, fchmodSync, fchownSync, fstatSync, lstatSync, mkdirSync, openSync, renameSync, rmdirSync, symlinkSync, unlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { configError, InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { at, DIR_FLAGS } from './dir-fd.ts';
import { checkName, writeNewFile, type Owner, type Written } from './new-file.ts';
import { wipeEntries, zeroFd, type WipeScope } from './wipe.ts';

export interface SecretFile { name: string; data: Buffer; mode: number; what: string }

const DATA = '..data';
const DATA_TMP = '..data_tmp';
const GENERATION_MODE = 0o700; // the output directory's own rule: only its owner enters

/** What the generations work in: the output directory, held by fd (output-dir.ts). */
export interface GenerationsScope {
  dirFd: number;
  path: string;
  dev: number;
  owner: Owner;
  log: Log;
}

interface Made { name: string; dev: number; ino: number }
interface SecretFd extends Made, Written {}
interface Generation extends Made {
  fd: number;
  files: SecretFd[];
  /** Its files are zeroed and gone, but the directory could not be removed: the wipe does it. */
  retired: boolean;
}

export class Generations {
  readonly #s: GenerationsScope;
  /** Every generation whose directory fd is still held, oldest first. */
  readonly #gens: Generation[] = [];
  #current: Generation | undefined;
  /** The visible symlinks OUT/NAME this init made, by name. */
  readonly #links = new Map<string, Made>();

  constructor(scope: GenerationsScope) {
    this.#s = scope;
  }

  get count(): number {
    return this.#gens.filter((g) => !g.retired).length;
  }

  publish(files: readonly SecretFile[]): Map<string, string> {
    const paths = new Map<string, string>();
    if (files.length === 0) return paths;
    for (const f of files) {
      checkName(f.name, f.what);
      if (paths.has(f.name)) throw configError(`${f.what}: file name ${f.name} is used by two secrets`);
      paths.set(f.name, join(this.#s.path, f.name));
    }
    const gen = this.#makeGeneration();
    const linked: string[] = [];
    try {
      const keep: Written[] = [];
      for (const f of files) {
        const shown = join(this.#s.path, gen.name, f.name);
        try {
          writeNewFile(gen.fd, f.name, shown, f.data, f.mode, this.#s.owner, f.what, keep);
        } finally {
          for (const w of keep.splice(0)) gen.files.push({ name: f.name, ...w, ...devIno(fstatSync(w.fd)) });
        }
        this.#s.log.debug({ file: shown, mode: `0${f.mode.toString(8)}`, bytes: f.data.length }, `wrote ${f.what}`);
      }
      this.#handOver(gen);
      for (const f of files) if (this.#ensureLink(f)) linked.push(f.name);
      this.#swap(gen);
    } catch (err) {
      for (const name of linked) {
        this.#unlinkIn(this.#s.dirFd, this.#links.get(name)!);
        this.#links.delete(name);
      }
      this.#retire(gen);
      throw err;
    }
    const before = this.#current;
    this.#current = gen;
    this.#s.log.debug({ dir: this.#s.path, generation: gen.name, previous: before?.name, files: files.length }, 'secret generation published');
    return paths;
  }

  /** Zeroes and removes every generation but the current one. */
  retireOld(): void {
    for (const gen of [...this.#gens]) if (gen !== this.#current && !gen.retired) this.#retire(gen);
  }

  /**
   * For the output directory's wipe: zeroes every secret file of every generation through its
   * fd, empties each generation directory through its fd (it may have been moved away), and
   * closes them. Removing the emptied directories, ..data and the symlinks by name is left to
   * the wipe of the output directory itself, which follows nothing.
   */
  wipeAll(scope: WipeScope): number {
    let count = 0;
    for (const gen of this.#gens.splice(0)) {
      this.#zeroFiles(gen);
      try {
        count += wipeEntries(gen.fd, scope);
        if (!this.#isStill(gen)) this.#s.log.warn({ dir: this.#s.path, generation: gen.name }, `secret generation ${gen.name} was moved out of ${this.#s.path}: its files are wiped, the empty directory stays wherever it was moved`);
      } finally {
        closeSync(gen.fd);
      }
    }
    this.#current = undefined;
    this.#links.clear();
    return count;
  }

  /** mkdir at the held directory (root's and 0700 until handed over: the child cannot touch it while it fills). */
  #makeGeneration(): Generation {
    const { dirFd, path } = this.#s;
    for (let attempt = 0; ; attempt++) {
      const name = generationName(new Date(), process.hrtime.bigint());
      try {
        mkdirSync(at(dirFd, name), { mode: GENERATION_MODE });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' && attempt < 10) continue;
        throw configError(`secret files: cannot create the generation directory ${join(path, name)}: ${code}`);
      }
      let fd: number;
      try {
        fd = openSync(at(dirFd, name), DIR_FLAGS);
      } catch (err) {
        throw configError(`secret files: cannot open the generation directory ${join(path, name)} just made (${(err as NodeJS.ErrnoException).code}): something replaced it`);
      }
      const st = fstatSync(fd);
      // Made by us a moment ago: a directory only the init's uid can create, on our file system.
      if (st.uid !== process.geteuid!() || st.dev !== this.#s.dev) {
        closeSync(fd);
        throw configError(`secret files: the generation directory ${join(path, name)} was replaced right after it was made (uid ${st.uid}): not writing secrets into it`);
      }
      fchmodSync(fd, GENERATION_MODE); // umask
      const gen: Generation = { name, fd, ...devIno(st), files: [], retired: false };
      this.#gens.push(gen); // from here on, the wipe covers it whatever happens
      return gen;
    }
  }

  /** The filled generation goes to the output owner, with the directory's mode; checked on the fd. */
  #handOver(gen: Generation): void {
    const { owner } = this.#s;
    if (owner) fchownSync(gen.fd, owner.uid, owner.gid);
    fchmodSync(gen.fd, GENERATION_MODE);
    const st = fstatSync(gen.fd);
    const problems: string[] = [];
    if ((st.mode & 0o7777) !== GENERATION_MODE) problems.push(`mode 0${(st.mode & 0o7777).toString(8)} instead of 0${GENERATION_MODE.toString(8)}`);
    if (owner && (st.uid !== owner.uid || st.gid !== owner.gid)) problems.push(`owner ${st.uid}:${st.gid} instead of ${owner.uid}:${owner.gid}`);
    if (problems.length) throw new InitError(EXIT.software, `secret files: the generation directory ${join(this.#s.path, gen.name)} failed verification: ${problems.join(', ')}`);
  }

  /**
   * OUT/NAME -> ..data/NAME: made the first time; later it must still be the very symlink made
   * then (a child that replaced it gets an error, not a repair: its replacement is never
   * followed or removed here). Returns true when it was made now.
   */
  #ensureLink(f: SecretFile): boolean {
    const { dirFd, path } = this.#s;
    const shown = join(path, f.name);
    const made = this.#links.get(f.name);
    if (made) {
      const st = lstatQuietly(at(dirFd, f.name));
      if (st?.isSymbolicLink() && sameObject(st, made)) return false;
      throw configError(`${f.what}: ${shown} is no longer the symlink to ${DATA}/${f.name} that tee-init made (now ${describe(st)}): something in the container replaced it; the new generation is not published`);
    }
    try {
      symlinkSync(`${DATA}/${f.name}`, at(dirFd, f.name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw configError(`${f.what}: cannot create ${shown}: ${code === 'EEXIST' ? 'something is already in the way (a file or symlink)' : code}`);
    }
    this.#links.set(f.name, { name: f.name, ...devIno(lstatSync(at(dirFd, f.name))) });
    return true;
  }

  /** ..data_tmp -> the generation, renamed over ..data: one atomic step for every reader. */
  #swap(gen: Generation): void {
    const { dirFd, path } = this.#s;
    const tmp = at(dirFd, DATA_TMP);
    try {
      try {
        symlinkSync(gen.name, tmp);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        unlinkSync(tmp); // a leftover name in our directory; unlink never follows it
        symlinkSync(gen.name, tmp);
      }
    } catch (err) {
      throw configError(`secret files: cannot create ${join(path, DATA_TMP)} (${(err as NodeJS.ErrnoException).code}): something in the container put a directory there? the new generation is not published`);
    }
    try {
      renameSync(tmp, at(dirFd, DATA));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      unlinkQuietly(tmp);
      const why = code === 'EISDIR' || code === 'ENOTEMPTY' ? 'a directory is in the way: something in the container replaced it' : code;
      throw configError(`secret files: cannot point ${join(path, DATA)} at the new generation (${why}); the new generation is not published`);
    }
  }

  /** Zeroes the generation's files through their fds, removes them and the directory by name while they are still ours. */
  #retire(gen: Generation): void {
    this.#zeroFiles(gen);
    gen.retired = true;
    let left = false;
    for (const f of gen.files) if (!this.#unlinkIn(gen.fd, f)) left = true;
    gen.files = [];
    if (!left && this.#isStill(gen)) {
      try {
        rmdirSync(at(this.#s.dirFd, gen.name));
        closeSync(gen.fd);
        this.#gens.splice(this.#gens.indexOf(gen), 1);
        this.#s.log.debug({ dir: this.#s.path, generation: gen.name }, 'secret generation retired');
        return;
      } catch {
        // Something else in it (the child's): the wipe empties it at the end.
      }
    }
    this.#s.log.warn({ dir: this.#s.path, generation: gen.name }, `secret generation ${gen.name} in ${this.#s.path} is zeroed, but its directory was changed by someone else and stays until the exit wipe`);
  }

  #zeroFiles(gen: Generation): void {
    for (const f of gen.files) {
      if (f.fd < 0) continue;
      try {
        zeroFd(f.fd, f.size);
      } catch (err) {
        this.#s.log.error({ dir: this.#s.path, err }, `wipe of ${this.#s.path}: a secret file cannot be zeroed (${(err as NodeJS.ErrnoException).code})`);
      } finally {
        closeSync(f.fd);
        f.fd = -1;
      }
    }
  }

  /** Is the generation's name in the output directory still the directory we made? */
  #isStill(gen: Generation): boolean {
    const st = lstatQuietly(at(this.#s.dirFd, gen.name));
    return st !== undefined && st.isDirectory() && sameObject(st, gen);
  }

  /** Unlinks `m.name` at `dirFd` if it is still the object made; true when it is gone. */
  #unlinkIn(dirFd: number, m: Made): boolean {
    const st = lstatQuietly(at(dirFd, m.name));
    if (!st) return true;
    if (!sameObject(st, m)) return false;
    return unlinkQuietly(at(dirFd, m.name));
  }
}

/** `..2026_12_01_22_50_01.123456789`: UTC, milliseconds from the clock, the rest from hrtime. */
export function generationName(now: Date, hr: bigint): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const ns = now.getUTCMilliseconds() * 1_000_000 + Number(hr % 1_000_000n);
  return `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.${p(ns, 9)}`;
}

const devIno = (st: Stats) => ({ dev: st.dev, ino: st.ino });
const sameObject = (st: Stats, m: { dev: number; ino: number }) => st.dev === m.dev && st.ino === m.ino;

function lstatQuietly(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

function unlinkQuietly(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

function describe(st: Stats | undefined): string {
  if (!st) return 'missing';
  if (st.isSymbolicLink()) return 'another symlink';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a file';
  return 'something else';
}
