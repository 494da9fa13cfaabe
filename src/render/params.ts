// Parsers for a preset's `with` parameters. Each takes the raw value and the field it came from,
// and returns the normalized value or throws a config error (exit 78) naming that field.
import { isIP } from 'node:net';
import { configError } from '../lib/errors.ts';
import { fieldOf } from './placeholders.ts';

export type Param<T> = (value: unknown, field: string) => T;

/** A short, printable view of a bad value for error messages (with values are not secrets). */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'a list' : value === null ? 'null' : typeof value === 'object' ? 'a mapping' : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

export const optional =
  <T>(param: Param<T>): Param<T | undefined> =>
  (value, field) =>
    value === undefined ? undefined : param(value, field);

export const withDefault =
  <T>(param: Param<T>, fallback: T): Param<T> =>
  (value, field) =>
    value === undefined ? fallback : param(value, field);

/** A TCP port; a string of digits is accepted too (values from environment overrides are text). */
export const port: Param<number> = (value, field) => {
  const n = typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw configError(`${field}: expected a port number 1-65535, got ${show(value)}`);
  }
  return n;
};

/** A whole number 1–1,000,000 (a limit such as a connection count); digits as text are accepted too. */
export const count: Param<number> = (value, field) => {
  const n = typeof value === 'string' && /^[0-9]{1,7}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw configError(`${field}: expected a whole number 1-1000000, got ${show(value)}`);
  }
  return n;
};

/** A non-empty string with no NUL byte (no argv element or file path can hold one). */
export const text: Param<string> = (value, field) => {
  if (typeof value !== 'string' || value === '') throw configError(`${field}: expected a non-empty string, got ${show(value)}`);
  if (value.includes('\0')) throw configError(`${field}: contains a NUL byte`);
  return value;
};

export const ipAddress: Param<string> = (value, field) => {
  const s = text(value, field);
  if (isIP(s) === 0) throw configError(`${field}: expected an IP address, got ${show(value)}`);
  return s;
};

export const oneOf =
  <const V extends string>(values: readonly V[]): Param<V> =>
  (value, field) => {
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) {
      throw configError(`${field}: expected one of ${values.join(', ')}, got ${show(value)}`);
    }
    return value as V;
  };

export const listOf =
  <T>(item: Param<T>): Param<T[]> =>
  (value, field) => {
    if (!Array.isArray(value)) throw configError(`${field}: expected a list, got ${show(value)}`);
    return value.map((v, i) => item(v, fieldOf(field, i)));
  };

/** One string or a list of them. */
export const oneOrMore =
  <T>(item: Param<T>): Param<T[]> =>
  (value, field) => {
    const list = Array.isArray(value) ? listOf(item)(value, field) : [item(value, field)];
    if (list.length === 0) throw configError(`${field}: expected at least one value`);
    return list;
  };

/** A plain mapping (not a list, not null). */
export function mapping(value: unknown, field: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw configError(`${field}: expected a mapping, got ${show(value)}`);
  return value as Record<string, unknown>;
}

export type ParamSpec = Record<string, Param<unknown>>;
export type ParamsOf<S extends ParamSpec> = { [K in keyof S]: ReturnType<S[K]> };

/** Parses run.with against a preset's parameter table: unknown keys are errors (typos fail early). */
export function parseParams<S extends ParamSpec>(raw: unknown, spec: S, preset: string): ParamsOf<S> {
  const given = raw === undefined ? {} : mapping(raw, 'run.with');
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(spec, key)) {
      throw configError(`${fieldOf('run.with', key)}: not a parameter of the ${preset} preset (parameters: ${Object.keys(spec).join(', ')})`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, param] of Object.entries(spec)) out[key] = param(given[key], `run.with.${key}`);
  return out as ParamsOf<S>;
}
