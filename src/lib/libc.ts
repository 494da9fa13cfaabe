// The libc calls Node does not expose: waitid/waitpid for orphans that libuv will never wait
// for, prctl(PR_SET_CHILD_SUBREAPER), pthread_sigmask to get SIGUSR1 back from
// --disable-sigusr1, and flock for the output directory's lock. Bound with koffi (a prebuilt N-API module: no compiler needed).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const P_ALL = 0;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x01000000;
const PR_SET_CHILD_SUBREAPER = 36;
const SIG_UNBLOCK = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
const EINTR = 4;

export interface Libc {
  /** The pid of some child that can be waited for, without reaping it; 0 if none. */
  peekExited(): number;
  /** Reaps `pid` if it has exited; true when it was reaped. */
  reap(pid: number): boolean;
  setSubreaper(): void;
  /** Unblocks `signal` (a number) for the calling thread. */
  unblockSignal(signal: number): void;
  /**
   * flock(fd, LOCK_EX|LOCK_NB): true when taken, false when another open file holds it. The
   * kernel releases it when the last fd of this open file closes (also when the process dies).
   */
  lockExclusive(fd: number): boolean;
}

export interface KoffiFn { (...args: unknown[]): number }
export interface Koffi {
  load(path: string | null): { func(signature: string): KoffiFn };
  errno(): number;
  sizeof(type: string): number;
}

/**
 * The bundle ships koffi's native module next to itself (dist/native/<libc>_<arch>/koffi.node);
 * from source, it comes from koffi's per-platform npm package.
 */
export function loadKoffi(): Koffi {
  const require = createRequire(import.meta.url);
  const here = dirname(fileURLToPath(import.meta.url));
  const errors: string[] = [];
  for (const libc of ['linux', 'musl']) {
    const file = join(here, 'native', `${libc}_${process.arch}`, 'koffi.node');
    if (!existsSync(file)) continue;
    try {
      return require(file) as Koffi;
    } catch (err) {
      errors.push(`${file}: ${(err as Error).message}`);
    }
  }
  const pkg = `@koromix/koffi-${process.platform}-${process.arch}`;
  try {
    return require(pkg) as Koffi;
  } catch (err) {
    errors.push(`${pkg}: ${(err as Error).message}`);
  }
  throw new Error(`cannot load koffi (needed to reap orphans and to lock the output directory): ${errors.join('; ')}`);
}

let cached: Libc | undefined;

export function libc(): Libc {
  if (cached) return cached;
  const koffi = loadKoffi();
  const self = koffi.load(null);
  const waitid = self.func('int waitid(int idtype, uint32_t id, void *info, int options)');
  const waitpid = self.func('int waitpid(int pid, void *status, int options)');
  const prctl = self.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)');
  const sigmask = self.func('int pthread_sigmask(int how, void *set, void *old)');
  const flock = self.func('int flock(int fd, int operation)');
  // siginfo_t: si_signo, si_errno, si_code, then (on 64-bit, after alignment padding) si_pid.
  const siPidOffset = koffi.sizeof('void *') === 8 ? 16 : 12;
  const info = Buffer.alloc(128);
  const status = Buffer.alloc(4);

  cached = {
    peekExited() {
      info.fill(0);
      // ECHILD (no children at all) is the normal "nothing to do" answer.
      if (waitid(P_ALL, 0, info, WEXITED | WNOHANG | WNOWAIT) !== 0) return 0;
      return info.readInt32LE(siPidOffset);
    },
    reap(pid) {
      return waitpid(pid, status, WNOHANG) === pid;
    },
    setSubreaper() {
      if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) !== 0) {
        throw new Error(`prctl(PR_SET_CHILD_SUBREAPER) failed, errno ${koffi.errno()}`);
      }
    },
    unblockSignal(signal) {
      const set = Buffer.alloc(128); // sigset_t: bit N-1 for signal N
      set[(signal - 1) >> 3] = 1 << ((signal - 1) & 7);
      const err = sigmask(SIG_UNBLOCK, set, null);
      if (err !== 0) throw new Error(`pthread_sigmask failed: error ${err}`);
    },
    lockExclusive(fd) {
      for (;;) {
        if (flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
        const errno = koffi.errno();
        if (errno === EWOULDBLOCK) return false;
        if (errno !== EINTR) throw new Error(`flock failed, errno ${errno}`);
      }
    },
  };
  return cached;
}

let mallocTrim: KoffiFn | null | undefined;

/**
 * malloc_trim(0): gives the C heap's free pages back to the kernel. glibc keeps what was freed
 * for reuse, in every thread's arena, and RSS with it (TLS records, JSON bodies, the secrets'
 * buffers of a refresh pass). False where there is no such call (musl returns memory itself).
 */
export function trimHeap(): boolean {
  if (mallocTrim === undefined) {
    try {
      mallocTrim = loadKoffi().load(null).func('int malloc_trim(size_t pad)');
    } catch {
      mallocTrim = null;
    }
  }
  if (mallocTrim === null) return false;
  mallocTrim(0);
  return true;
}
