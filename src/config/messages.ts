// Schema problems in our words: every line names the field, what was found there and what to
// write instead. zod's own messages ("Invalid input: expected string, received number",
// "Invalid key in record") never reach the operator: `defaultMessage` is the error map passed
// to every parse, `describeIssues` turns the issues into lines, most specific first.
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

/** A config field path as written in YAML: secrets.key.mode, run.command[0], run.env["A B"]. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out || '(top level)';
}

const MAX_SHOWN = 60;

/** What the config held, as a person would say it. Config text is never secret. */
export function found(value: unknown): string {
  if (value === null) return 'nothing (an empty value)';
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') {
    if (value === '') return 'an empty text';
    const shown = JSON.stringify(value);
    return shown.length > MAX_SHOWN ? `${shown.slice(0, MAX_SHOWN - 4)}..." (${value.length} characters)` : shown;
  }
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : Number.isFinite(value) ? `the number ${value}` : `the number ${value} (too large to be a number)`;
  if (typeof value === 'boolean') return `${value}`;
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`;
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'a mapping (key: value)';
  return typeof value;
}

const WRITE: Record<string, string> = {
  string: 'text (quote it if it looks like a number or true/false)',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value lines, or { key: value })',
  record: 'a mapping (key: value lines, or { key: value })',
  array: 'a list ([a, b], or one "- item" per line)',
  tuple: 'a list',
};
const SHORT: Record<string, string> = { string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', object: 'a mapping', record: 'a mapping', array: 'a list' };
const write = (expected: string) => WRITE[expected] ?? expected;

const UNIT: Record<string, [string, string]> = {
  string: ['character', 'characters'],
  array: ['item', 'items'],
  set: ['item', 'items'],
  file: ['byte', 'bytes'],
};

function bound(origin: string, limit: number | bigint, inclusive: boolean | undefined, side: 'least' | 'most'): string {
  const n = Number(limit);
  const unit = UNIT[origin];
  if (unit) return `at ${side} ${n} ${n === 1 ? unit[0] : unit[1]}`;
  const exact = inclusive === false ? (side === 'least' ? `more than ${n}` : `less than ${n}`) : `at ${side} ${n}`;
  return `a number ${exact}`;
}

/**
 * The error map: the message for every issue the schema did not word itself. It says what to
 * write; describeIssues adds the field and what was found.
 */
export function defaultMessage(issue: RawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `missing: add it (${SHORT[issue.expected] ?? issue.expected})`;
      return `write ${write(issue.expected)}`;
    case 'too_small':
      return `write ${bound(issue.origin, issue.minimum, issue.inclusive, 'least')}`;
    case 'too_big':
      return `write ${bound(issue.origin, issue.maximum, issue.inclusive, 'most')}`;
    case 'invalid_value':
      return issue.values.length === 1 ? `write ${JSON.stringify(issue.values[0])}` : `write one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      return issue.format === 'regex' ? `write text matching ${issue.pattern}` : `write ${issue.format}`;
    case 'not_multiple_of':
      return `write a multiple of ${issue.divisor}`;
    case 'invalid_union': {
      const wanted = [...new Set(issue.errors.flat().flatMap((e) => (e.code === 'invalid_type' ? [write(e.expected)] : [])))];
      return wanted.length ? `write ${wanted.join(', or ')}` : 'write one of the documented forms';
    }
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_key':
      return 'is not a valid key here';
    case 'invalid_element':
      return 'is not a valid entry';
    default:
      return 'is not valid here';
  }
}

/** Edit distance, to suggest the field an unknown one was probably meant to be. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

const samePlace = (a: readonly PropertyKey[], b: readonly PropertyKey[]) => a.length === b.length && a.every((p, i) => p === b[i]);

/** One line per issue, unknown fields first: a misspelt field also shows up as the missing one. */
export function describeIssues(issues: readonly Issue[]): string[] {
  const missing = issues.filter((i) => i.code === 'invalid_type' && !('input' in i && i.input !== undefined));
  const unknown = issues.filter((i) => i.code === 'unrecognized_keys');
  const rest = issues.filter((i) => i.code !== 'unrecognized_keys');
  return [...unknown, ...rest].map((issue) => describeIssue(issue, missing));
}

function describeIssue(issue: Issue, missing: readonly Issue[]): string {
  if (issue.code === 'unrecognized_keys') {
    const at = issue.path.length ? `${fieldPath(issue.path)}: ` : '';
    const nearby = missing.filter((m) => samePlace(m.path.slice(0, -1), issue.path)).map((m) => String(m.path.at(-1)));
    const keys = issue.keys.map((k) => {
      const meant = nearby.find((n) => distance(k, n) <= Math.max(1, Math.floor(n.length / 4)));
      return `${JSON.stringify(k)}${meant ? ` (did you mean ${JSON.stringify(meant)}?)` : ''}`;
    });
    return `${at}unknown field${keys.length > 1 ? 's' : ''} ${keys.join(', ')}: remove ${keys.length > 1 ? 'them' : 'it'} or fix the spelling`;
  }
  if (issue.code === 'invalid_key') {
    // The path ends with the bad key itself; say it once, as the thing found.
    const inner = issue.issues[0] as Issue | undefined;
    const why = inner?.message ?? issue.message;
    return `${fieldPath(issue.path.slice(0, -1))}: found the key ${found(String(issue.path.at(-1)))}, ${why}`;
  }
  if (issue.code === 'custom') return `${fieldPath(issue.path)}: ${issue.message}`;
  let input = (issue as { input?: unknown }).input;
  const discriminator = (issue as { discriminator?: unknown }).discriminator;
  if (issue.code === 'invalid_union' && typeof discriminator === 'string' && typeof input === 'object' && input !== null) {
    // zod reports the whole entry; what is wrong is the value of its discriminating field.
    input = (input as Record<string, unknown>)[discriminator];
  }
  if (input === undefined) return `${fieldPath(issue.path)}: ${issue.code === 'invalid_type' ? '' : 'missing: '}${issue.message}`;
  return `${fieldPath(issue.path)}: found ${found(input)}, ${issue.message}`;
}
