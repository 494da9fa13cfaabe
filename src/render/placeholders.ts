// Placeholder substitution: `{{secrets.NAME.path}}`, `{{output.dir}}`, `{{with.KEY}}` (and, in a
// preset's own templates, the values the preset computes, e.g. `{{tls.cert}}`).
//
// One pass, left to right, over the template only: a substituted value is never scanned again,
// so a value holding `{{...}}`, quotes or newlines stays an inert value. Data templates (argv
// lists, JSON/YAML documents) are filled at the data level and serialized afterwards, so a value
// can only ever become one string (or number) where its placeholder stood.
import { configError } from '../lib/errors.ts';
import type { SecretRef } from './types.ts';

export type Scalar = string | number | boolean;

export interface Scope {
  secrets: Readonly<Record<string, SecretRef>>;
  /** Absent when the run has no output directory. */
  outputDir: string | undefined;
  /** run.with after the preset's parsing (defaults applied). */
  with: Readonly<Record<string, unknown>>;
  /** Values a preset computes for its own templates; never offered to user templates. */
  preset?: Readonly<Record<string, Scalar>> | undefined;
}

// No braces or newline inside: `{{ {{x}} }}` holds the placeholder `{{x}}` and literal braces.
const PLACEHOLDER = /\{\{[ \t]*([^{}\n]*?)[ \t]*\}\}/g;
const WHOLE = /^\{\{[ \t]*([^{}\n]*?)[ \t]*\}\}$/;
const SECRET_PATH = /^secrets\.(.+)\.path$/;
const KNOWN = '{{secrets.NAME.path}}, {{output.dir}}, {{with.KEY}}';

/** `field.key`, or `field["odd key"]` when the key is not a plain identifier. */
export function fieldOf(field: string, key: string | number): string {
  if (typeof key === 'number') return `${field}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? `${field}.${key}` : `${field}[${JSON.stringify(key)}]`;
}

/** The value of one placeholder expression; throws a config error naming `field`. */
function lookup(expr: string, scope: Scope, field: string): unknown {
  const fail = (why: string) => configError(`${field}: {{${expr}}}: ${why}`);
  if (expr === 'output.dir') {
    if (scope.outputDir === undefined) throw fail('this run has no output directory (set output.dir)');
    return scope.outputDir;
  }
  const secret = SECRET_PATH.exec(expr);
  if (secret) {
    const name = secret[1]!;
    if (!Object.hasOwn(scope.secrets, name)) {
      const names = Object.keys(scope.secrets);
      throw fail(`no secret "${name}" is configured (secrets: ${names.length ? names.join(', ') : 'none'})`);
    }
    const path = scope.secrets[name]!.path;
    if (path === undefined) throw fail(`secret "${name}" has no file: (add file: to secrets.${name})`);
    return path;
  }
  if (expr.startsWith('with.')) {
    const key = expr.slice('with.'.length);
    if (!Object.hasOwn(scope.with, key) || scope.with[key] === undefined) throw fail(`run.with has no "${key}"`);
    if (scope.with[key] === null) throw fail(`run.with.${key} is null`);
    return scope.with[key];
  }
  if (scope.preset && Object.hasOwn(scope.preset, expr)) return scope.preset[expr];
  throw fail(`unknown placeholder (known: ${KNOWN})`);
}

function asText(value: unknown, expr: string, field: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw configError(`${field}: {{${expr}}}: is ${Array.isArray(value) ? 'a list' : 'an object'}; only a whole-value placeholder in a data template can take it`);
}

export interface TextOptions {
  /**
   * For text file templates, whose structure tee-init cannot see: refuse substituted values
   * holding control characters (a newline could start a new directive in a line-based config).
   */
  noControlChars?: boolean;
}

/** Substitutes every placeholder in a string; the result is always a string. */
export function expandText(template: string, scope: Scope, field: string, options: TextOptions = {}): string {
  return template.replace(PLACEHOLDER, (_match, expr: string) => {
    const text = asText(lookup(expr, scope, field), expr, field);
    if (text.includes('\0')) throw configError(`${field}: {{${expr}}}: the value contains a NUL byte`);
    if (options.noControlChars && /[\0-\x08\x0a-\x1f\x7f]/.test(text)) {
      throw configError(`${field}: {{${expr}}}: the value contains a newline or control character, which could change the structure of a text template (use a JSON/YAML data template)`);
    }
    return text;
  });
}

/**
 * Fills a data template (lists, objects, scalars) and returns a fresh copy. A string that is
 * one placeholder and nothing else takes the value's own type (a number stays a number, so an
 * Envoy port_value is an integer; a list stays a list); anything else is text substitution.
 */
export function expandData(template: unknown, scope: Scope, field: string): unknown {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (!whole) return expandText(template, scope, field);
    const value = lookup(whole[1]!, scope, field);
    if (typeof value === 'string' && value.includes('\0')) throw configError(`${field}: {{${whole[1]}}}: the value contains a NUL byte`);
    return typeof value === 'object' ? structuredClone(value) : value;
  }
  if (Array.isArray(template)) return template.map((item, i) => expandData(item, scope, fieldOf(field, i)));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) {
      if (key.includes('{{')) throw configError(`${fieldOf(field, key)}: placeholders are not expanded in keys`);
      // defineProperty: a key named "__proto__" stays an ordinary key.
      Object.defineProperty(out, key, { value: expandData(value, scope, fieldOf(field, key)), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (template === null || typeof template === 'number' || typeof template === 'boolean') return template;
  throw configError(`${field}: ${typeof template} is not allowed in a template`);
}

/** Names of the secrets referenced as `{{secrets.NAME.path}}` anywhere in a template. */
export function secretRefs(template: unknown, into: Set<string> = new Set()): Set<string> {
  if (typeof template === 'string') {
    for (const m of template.matchAll(PLACEHOLDER)) {
      const secret = SECRET_PATH.exec(m[1]!);
      if (secret) into.add(secret[1]!);
    }
  } else if (Array.isArray(template)) {
    for (const item of template) secretRefs(item, into);
  } else if (template !== null && typeof template === 'object') {
    for (const value of Object.values(template)) secretRefs(value, into);
  }
  return into;
}

/** Fills an argument list: every element stays one string, whatever the values hold. */
export function expandArgv(template: readonly string[], scope: Scope, field: string): string[] {
  return template.map((arg, i) => {
    const f = fieldOf(field, i);
    if (typeof arg !== 'string') throw configError(`${f}: expected a string, got ${arg === null ? 'null' : typeof arg}`);
    if (arg.includes('\0')) throw configError(`${f}: contains a NUL byte`);
    return expandText(arg, scope, f);
  });
}
