// Runs the real bundle (dist/tee-init.js, built by `npm test` before the tests) as a real
// process, and follows its JSON log on stderr.
import { execa, type Options, type ResultPromise } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const bundle = process.env.TEE_INIT_BUNDLE ?? join(root, 'dist', 'tee-init.js');
export const node = process.execPath;

if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run \`npm run build\` (npm test does)`);

export interface LogRecord {
  severity: string;
  message: string;
  [key: string]: unknown;
}

/** Collects the init's stderr as it arrives and lets a test wait for a given record. */
export class LogTail {
  readonly lines: string[] = [];
  readonly records: LogRecord[] = [];
  #buf = '';
  #waiters: { match: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = [];
  #endWaiters: (() => void)[] = [];

  push(chunk: string): void {
    this.#buf += chunk;
    let i;
    while ((i = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 1);
      this.lines.push(line);
      let rec: LogRecord | undefined;
      try {
        rec = JSON.parse(line) as LogRecord;
      } catch {
        continue;
      }
      this.records.push(rec);
      this.#waiters = this.#waiters.filter((w) => (w.match(rec!) ? (w.resolve(rec!), false) : true));
    }
  }

  end(): void {
    for (const w of this.#endWaiters) w();
  }

  /** Resolves with the first record (already seen or future) whose message contains `text`. */
  waitFor(text: string | ((r: LogRecord) => boolean), timeoutMs = 10_000): Promise<LogRecord> {
    const match = typeof text === 'string' ? (r: LogRecord) => r.message.includes(text) : text;
    const seen = this.records.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no log record matching ${String(text)} within ${timeoutMs} ms; got:\n${this.lines.join('\n')}`)),
        timeoutMs,
      );
      this.#waiters.push({ match, resolve: (r) => (clearTimeout(timer), resolve(r)) });
    });
  }

  find(text: string): LogRecord | undefined {
    return this.records.find((r) => r.message.includes(text));
  }

  get text(): string {
    return this.lines.join('\n');
  }
}

export interface Started {
  proc: ResultPromise<{ reject: false }>;
  log: LogTail;
}

/** The node flags of the bundle's start line (its shebang): the suite runs the init as it ships. */
export const startLineArgs: readonly string[] = (() => {
  const line = existsSync(bundle) ? readFileSync(bundle, 'utf8').split('\n')[1] : undefined; // unbuilt: unit tests only
  return (/exec node (.*?) "\$0"/.exec(line ?? '')?.[1] ?? '--disable-sigusr1').split(/\s+/).filter(Boolean);
})();

/** Starts `node --disable-sigusr1 HEAP-FLAGS dist/tee-init.js ARGS` (as the shebang would). */
export function startInit(args: readonly string[], options: Options = {}, nodeArgs: readonly string[] = startLineArgs): Started {
  return startCommand([node, ...nodeArgs, bundle, ...args], options);
}

/** Starts an arbitrary argv (e.g. `unshare ... node dist/tee-init.js`) with a log tail. */
export function startCommand(argv: readonly string[], options: Options = {}): Started {
  const proc = execa(argv[0]!, argv.slice(1), {
    reject: false,
    stdin: 'ignore',
    env: { NO_PROXY: '127.0.0.1,localhost', ...options.env },
    extendEnv: true,
    timeout: 60_000,
    ...options,
  } as Options & { reject: false }) as ResultPromise<{ reject: false }>;
  const log = new LogTail();
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (c: string) => log.push(c));
  proc.stderr?.on('end', () => log.end());
  return { proc, log };
}

/** Runs the init to completion. */
export async function runInit(args: readonly string[], options: Options = {}) {
  const { proc, log } = startInit(args, options);
  const result = await proc;
  return { result, log, code: result.exitCode, signal: result.signal };
}
