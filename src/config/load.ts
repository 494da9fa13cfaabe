// Reading, parsing and checking the config file. Every problem becomes one line that names the
// file and the field path, with exit status 78; `check` shows all of them (problemsOf).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument, type Tags } from 'yaml';
import { configError, InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import { checkReferences } from './references.ts';
import { defaultMessage, describeIssues, fieldPath } from './messages.ts';
import { configSchema, type Config } from './schema.ts';
import { checkUnits } from './schema-run.ts';

export interface LoadedConfig {
  path: string;
  /** Directory of the config file: relative `path:` of file secrets are resolved against it. */
  dir: string;
  config: Config;
}

/** A config is a few KiB; anything this large is a mistake (or /dev/zero). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Deeper than any sensible config; keeps rendering (recursive) far from the stack limit. */
export const MAX_DEPTH = 32;

/**
 * YAML 1.2 reads 0o400 and 0x100 as the numbers 256: a `mode: 0o400` would be reported as
 * "256". Kept as the text written, they are read as what they mean where a mode is expected,
 * and reported as written anywhere else.
 */
const keepRadix = { default: true, tag: 'tag:yaml.org,2002:int', test: /^0[ox][0-9a-fA-F]+$/, resolve: (s: string) => s };
const customTags = (tags: Tags) => [keepRadix, ...tags] as Tags;

/** All the problems, one line each, most specific first; the first one leads the boot's message. */
export function problemsOf(err: unknown): string[] {
  const problems = err instanceof InitError ? err.detail?.problems : undefined;
  return Array.isArray(problems) ? (problems as string[]) : [(err as Error).message];
}

/**
 * One InitError carrying every problem: its message is the first, and how many more. Its status
 * is 78 unless the first problem's own (`first`, whose detail it keeps too) says otherwise.
 */
export function configProblems(origin: string, problems: readonly string[], first?: InitError): InitError {
  // One line each, whatever a message quoted: control characters are shown escaped.
  const lines = problems.map((p) => `config ${origin}: ${p}`.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1)));
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more: run tee-init check --config ${origin} to see them all)` : '';
  return new InitError(first?.exitCode ?? EXIT.config, `${lines[0]}${more}`, { ...first?.detail, problems: lines });
}

/** YAML/JSON text to plain data: one line for a syntax error, an unknown tag or an alias bomb. */
function parseText(text: string, origin: string): unknown {
  const fail = (where: string, what: string) => configError(`config ${origin}:${where} is not valid YAML/JSON: ${what.split('\n')[0]}`);
  let doc;
  try {
    doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, customTags, logLevel: 'silent' });
  } catch (err) {
    throw fail('', (err as Error).message);
  }
  const bad = doc.errors[0] ?? doc.warnings[0];
  if (bad) throw fail(bad.linePos ? ` line ${bad.linePos[0].line}, column ${bad.linePos[0].col}` : '', bad.message);
  try {
    return doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    throw fail('', (err as Error).message);
  }
}

/**
 * Only what JSON can say gets past here: YAML tags that make sets, binary or dates, and nesting
 * deep enough to exhaust the stack while rendering are refused.
 */
function plainDataProblem(value: unknown, path: (string | number)[] = []): string | undefined {
  if (path.length > MAX_DEPTH) return `${fieldPath(path.slice(0, MAX_DEPTH))}: nested more than ${MAX_DEPTH} levels deep: flatten it`;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return undefined; // NaN and infinities: each field's own check says what to write
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = plainDataProblem(value[i], [...path, i]);
      if (p) return p;
    }
    return undefined;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [k, v] of Object.entries(value)) {
      const p = plainDataProblem(v, [...path, k]);
      if (p) return p;
    }
    return undefined;
  }
  const kind = value instanceof Set ? 'a set (!!set)' : value instanceof Map ? 'an ordered map (!!omap/!!pairs)' : value instanceof Uint8Array ? 'binary data (!!binary)' : value instanceof Date ? 'a timestamp (!!timestamp)' : typeof value;
  return `${fieldPath(path)}: found ${kind}, write plain text, numbers, true/false, lists and mappings (no YAML tags)`;
}

/** Parses config text (YAML or JSON) into a checked Config. `origin` names it in messages. */
export function parseConfig(text: string, origin: string): Config {
  let data = parseText(text, origin);
  if (data === null || data === undefined) data = {};
  const plain = plainDataProblem(data);
  if (plain) throw configProblems(origin, [plain]);
  const result = configSchema.safeParse(data, { error: defaultMessage, reportInput: true });
  if (!result.success) throw configProblems(origin, describeIssues(result.error.issues));
  const problems = checkReferences(result.data);
  if (problems.length) throw configProblems(origin, problems);
  // processes: order (cycles, unknown names): one line, prefixed like the rest.
  checkUnits(result.data, origin);
  return result.data;
}

/**
 * The file's text. Opened non-blocking and checked to be a regular file before reading, so a
 * FIFO or a device never blocks or floods the init; read up to the limit + 1 byte.
 */
function readConfigFile(abs: string): string {
  const fail = (why: string) => configError(`config file ${abs} ${why}: check --config / TEE_INIT_CONFIG`);
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail(st.isDirectory() ? 'is a directory, not a file' : 'is not a regular file');
    const buf = Buffer.alloc(Math.min(st.size, MAX_CONFIG_BYTES) + 1);
    let n = 0;
    for (let got; n < buf.length && (got = readSync(fd, buf, n, buf.length - n, null)) > 0; ) n += got;
    if (n > MAX_CONFIG_BYTES) throw fail(`is larger than ${MAX_CONFIG_BYTES / 1024} KiB`);
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
    try {
      return text.decode(buf.subarray(0, n));
    } catch {
      throw fail('is not UTF-8 text');
    }
  } catch (err) {
    if (err instanceof InitError) throw err;
    throw fail(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/** Reads and checks the config file at `path`. */
export function loadConfig(path: string): LoadedConfig {
  const abs = resolve(path);
  const config = parseConfig(readConfigFile(abs), abs);
  const dir = dirname(abs);
  for (const s of Object.values(config.secrets)) {
    if (s.source === 'file' && !isAbsolute(s.path)) s.path = resolve(dir, s.path);
  }
  return { path: abs, dir, config };
}
