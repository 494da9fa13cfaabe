// The libc calls of the kernel byte path (./splice.ts, ./splice-thread.ts), bound with koffi as
// src/lib/libc.ts binds its own. Every call takes only ints and Buffers we allocated with
// the size the kernel writes into (a pollfd is 8 bytes, a pipe2 pair 8): nothing here can write
// past memory the kernel was handed.
import { constants } from 'node:os';
import { loadKoffi } from '../lib/libc.ts';

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const EAGAIN = 11;
export const EINTR = 4;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
const SPLICE_F_MOVE = 1;
const SPLICE_F_NONBLOCK = 2;
const SHUT_WR = 1;

export interface SpliceLibc {
  /** A close-on-exec duplicate of `fd`; throws with the errno's name. */
  dup(fd: number): number;
  /** A non-blocking close-on-exec pipe [read, write, its size]: `size` bytes if the kernel allows. */
  pipe(size: number): [number, number, number];
  /** write(2) of all of `data` to a non-blocking fd; false if it did not all fit at once. */
  writeAll(fd: number, data: Buffer): boolean;
  /** splice(2), non-blocking: bytes moved, 0 at EOF, -errno on failure. */
  splice(from: number, to: number, len: number): number;
  /** poll(2) over `count` pollfds in `fds`: ready count, or -errno. */
  poll(fds: Buffer, count: number, timeoutMs: number): number;
  /** shutdown(fd, SHUT_WR): 0 or -errno. */
  shutdownWrite(fd: number): number;
  /** read(2) into `buf`, to drain a wake-up pipe: bytes, or -errno. */
  read(fd: number, buf: Buffer): number;
  close(fd: number): void;
}

const names = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
export const errnoName = (errno: number): string => names.get(errno) ?? `errno ${errno}`;

let cached: SpliceLibc | undefined;

export function spliceLibc(): SpliceLibc {
  if (cached) return cached;
  const koffi = loadKoffi();
  const self = koffi.load(null);
  const fcntl = self.func('int fcntl(int fd, int cmd, ...)');
  const pipe2 = self.func('int pipe2(void *fds, int flags)');
  const write = self.func('long write(int fd, void *buf, unsigned long n)');
  const read = self.func('long read(int fd, void *buf, unsigned long n)');
  const splice = self.func('long splice(int fdIn, void *offIn, int fdOut, void *offOut, unsigned long len, unsigned int flags)');
  const poll = self.func('int poll(void *fds, unsigned long nfds, int timeout)');
  const shutdown = self.func('int shutdown(int fd, int how)');
  const close = self.func('int close(int fd)');
  const pair = Buffer.alloc(8);
  const fail = (what: string): never => {
    throw new Error(`${what} failed: ${errnoName(koffi.errno())}`);
  };
  cached = {
    dup(fd) {
      const copy = fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0);
      return copy >= 0 ? copy : fail('fcntl(F_DUPFD_CLOEXEC)');
    },
    pipe(size) {
      if (pipe2(pair, O_NONBLOCK | O_CLOEXEC) !== 0) fail('pipe2');
      const [r, w] = [pair.readInt32LE(0), pair.readInt32LE(4)];
      // Larger pipes mean fewer splices per MiB; the kernel may refuse (pipe-user-pages-soft),
      // and the default 64 KiB still works. The size it has is what the thread may fill.
      fcntl(w, F_SETPIPE_SZ, 'int', size);
      const actual = fcntl(w, F_GETPIPE_SZ, 'int', 0);
      if (actual <= 0) {
        close(r);
        close(w);
        fail('fcntl(F_GETPIPE_SZ)');
      }
      return [r, w, actual];
    },
    writeAll(fd, data) {
      return data.length === 0 || write(fd, data, data.length) === data.length;
    },
    splice(from, to, len) {
      const n = splice(from, null, to, null, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      return n >= 0 ? n : -koffi.errno();
    },
    poll(fds, count, timeoutMs) {
      const n = poll(fds, count, timeoutMs);
      return n >= 0 ? n : -koffi.errno();
    },
    shutdownWrite(fd) {
      return shutdown(fd, SHUT_WR) === 0 ? 0 : -koffi.errno();
    },
    read(fd, buf) {
      const n = read(fd, buf, buf.length);
      return n >= 0 ? n : -koffi.errno();
    },
    close(fd) {
      close(fd); // Linux frees the fd even when close reports EINTR: never retried
    },
  };
  return cached;
}
