import type { Readable } from 'node:stream';

/** Reads a stream line by line; `next()` waits for the next line (or rejects at EOF/timeout). */
export class Lines {
  #buf = '';
  #queue: string[] = [];
  #waiters: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  #ended = false;
  readonly all: string[] = [];

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.#buf += chunk;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        this.all.push(line);
        const w = this.#waiters.shift();
        if (w) w.resolve(line);
        else this.#queue.push(line);
      }
    });
    stream.on('end', () => {
      this.#ended = true;
      for (const w of this.#waiters.splice(0)) w.reject(new Error(`stream ended; lines so far: ${this.all.join(' | ')}`));
    });
  }

  next(timeoutMs = 10_000): Promise<string> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#ended) return Promise.reject(new Error(`stream ended; lines so far: ${this.all.join(' | ')}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line within ${timeoutMs} ms; lines so far: ${this.all.join(' | ')}`)), timeoutMs);
      this.#waiters.push({
        resolve: (l) => (clearTimeout(timer), resolve(l)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  /** Skips lines until one matches. */
  async until(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpExecArray> {
    for (;;) {
      const m = pattern.exec(await this.next(timeoutMs));
      if (m) return m;
    }
  }
}

/** Polls `check` (every few ms) until it returns true; for state with no event to await. */
export async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
