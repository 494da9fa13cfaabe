#!/usr/bin/env node
// envoy-validate.mjs - schema check of Envoy v3 configs (YAML or JSON) against Envoy's API
// .proto files as shipped by the npm package @grpc/grpc-js-xds (a devDependency: Envoy's
// data-plane-api, cncf/xds, protoc-gen-validate and googleapis under its deps/), so that a
// fresh clone validates with nothing beside it. Adapted from the team's shared validator.
//
// USAGE (from the project root)
//   node test/render/envoy-validate.mjs [options] FILE...   (FILE "-" reads YAML from stdin)
//     --type NAME       root message (default envoy.config.bootstrap.v3.Bootstrap),
//                       e.g. envoy.config.listener.v3.Listener for a fragment
//     --sds             FILE is an SDS resource file (what a path_config_source names):
//                       a DiscoveryResponse holding exactly one
//                       envoy.extensions.transport_sockets.tls.v3.Secret, named, of one kind
//     --proto-dir DIR   an include directory holding envoy/, udpa/, xds/, validate/, google/
//                       instead of the package's (repeatable); also $ENVOY_API_DIR
//     --canonical       also reject forms Envoy tolerates but proto3 JSON does not
//                       (single value for a list, {"seconds":..} durations, "true"
//                       strings for bools, ...); they are warnings otherwise
//     --no-pgv          skip protoc-gen-validate (validate.rules) checks
//     --quiet           print nothing on success, no warnings
//   Exit status: 0 = valid (prints "valid"), 1 = invalid (one line per error,
//   with a JSON path), 2 = usage / read / proto-load problem.
//
// PROGRAMMATIC
//   import { createValidator } from './envoy-validate.mjs';
//   const v = createValidator();            // loads the protos once (~1 s)
//   const { errors, warnings } = v.validate(v.parseText(text, 'x.yaml'));
//   v.validateSds(v.parseText(sdsText, 'x.yaml'), { name: 'cert', kind: 'tls_certificate' });
//
// WHICH PROTOS: every .proto under envoy/, udpa/, xds/ whose imports all resolve in the
// include directories. The package leaves out a few third-party trees (opencensus,
// opentelemetry, prometheus): the files that import them (some tracers and stat sinks) are
// not loaded, and `skipped` lists them; a config naming one of their types by @type fails as
// an unknown type, never passes silently.
//
// WHAT IS CHECKED - it mimics how Envoy loads a file: YAML scalars are typed the way
// Envoy's yaml-cpp conversion does (quoted = string; plain: bool/int/double/string;
// ints beyond int32 become strings), then protobuf's JSON parser rules apply with the
// options Envoy uses (unknown fields rejected, enum names case-insensitive, legacy
// leniencies allowed):
//   * every key must be a field of its message (snake_case name or lowerCamelCase
//     JSON name); unknown keys are errors, with a "did you mean" hint
//   * google.protobuf.Any: "@type" (type.googleapis.com/<full.Name>) must name a
//     message present in the proto set; its content is checked recursively
//   * well-known types: Duration "1.5s", Timestamp RFC 3339, wrappers as bare
//     scalars, Struct/Value/ListValue free-form, FieldMask string, Empty {}
//   * scalars by type (integers in range, strings only for string fields, bools,
//     base64 bytes), enums by name (or number), repeated = lists, maps = objects
//   * at most one member of each oneof
//   * protoc-gen-validate rules Envoy enforces at load time (subset):
//     message.required, any.required, oneof (validate.required), string
//     len/min_len/max_len/min_bytes/max_bytes/prefix/suffix/contains/in/not_in/
//     const/pattern/well_known (header regexes, ip, hostname), bytes lengths,
//     numeric gt/gte/lt/lte/const/in/not_in (also through wrapper types),
//     enum defined_only/in/not_in, duration gt/gte/lt/lte, repeated
//     min_items/max_items/unique/items, map min_pairs/max_pairs/keys/values
//   * fields marked (envoy.annotations.disallowed_by_default) are errors;
//     deprecated fields / enum values are warnings
// NOT CHECKED: rules living in Envoy's C++ code (cluster names existing, files
// readable, filter ordering, regex syntax...), types absent from the proto set.

import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DEFAULT_TYPE = 'envoy.config.bootstrap.v3.Bootstrap';

const require = createRequire(import.meta.url);
const requireDep = (name) => require(name);

// The include directories of @grpc/grpc-js-xds (what its own proto-loader-gen-types uses),
// then protobufjs's copy of google/protobuf/descriptor.proto (the other well-known types are
// built into protobufjs).
export function defaultIncludeDirs() {
  const xds = path.dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(xds, 'deps', d));
  return [...deps, path.dirname(require.resolve('protobufjs/package.json'))];
}
// Trees whose every loadable file is loaded (an @type may name any message in them).
const ROOT_TREES = ['envoy', 'udpa', 'xds'];
// The package still carries some of Envoy's v2 API (envoy.config.filter.*.v2 ...), which Envoy
// removed: a config naming one must fail as an unknown type, so only v3 packages are loaded.
const RETIRED_ENVOY_API = (rel) => rel.startsWith('envoy/') && rel.split('/').some((seg) => /^v\d/.test(seg) && !/^v3(alpha)?$/.test(seg));

// ---------------------------------------------------------------- helpers
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const setOwn = (o, k, v) => Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
const describe = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'string' ? `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)}` : `${typeof v} ${typeof v === 'object' ? '' : JSON.stringify(v)}`.trim());
const jsonName = (n) => n.replace(/_+([a-zA-Z0-9])/g, (_, c) => c.toUpperCase()).replace(/_+$/, '');
const pathKey = (p, k) => (/^[A-Za-z_@][A-Za-z0-9_]*$/.test(k) ? `${p}.${k}` : `${p}[${JSON.stringify(k)}]`);

function levenshtein(a, b) {
  a = a.toLowerCase(); b = b.toLowerCase();
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]; prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = t;
    }
  }
  return prev[b.length];
}
function closest(word, candidates, maxDist) {
  let best = null, bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word, c);
    if (d < bestD) { best = c; bestD = d; }
  }
  return bestD <= maxDist ? best : null;
}

const INT_RANGES = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n], sint32: [-(2n ** 31n), 2n ** 31n - 1n], sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n], fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n], sint64: [-(2n ** 63n), 2n ** 63n - 1n], sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n], fixed64: [0n, 2n ** 64n - 1n],
};
const FLOAT_TYPES = new Set(['double', 'float']);
const WRAPPERS = {
  'google.protobuf.DoubleValue': 'double', 'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64', 'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32', 'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool', 'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};
const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;
const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const HEADER_RE = {
  HTTP_HEADER_NAME: /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/,
  HTTP_HEADER_VALUE: /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/,
  LOOSE: /^[^\u0000\u000A\u000D]*$/,
};

// Integer value of a JSON number or numeric string, or null when not an integer.
function toBigInt(v) {
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : null;
  if (typeof v === 'string' && /^[-+]?\d+$/.test(v)) return BigInt(v.replace(/^\+/, ''));
  if (typeof v === 'string' && /^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(v)) {
    const n = Number(v); return Number.isInteger(n) && Math.abs(n) <= 2 ** 53 ? BigInt(n) : null;
  }
  return null;
}
function toFloat(v) {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    if (/^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(v.trim())) return Number(v);
  }
  return null;
}
function durationNanos(v) {
  if (isObj(v)) return BigInt(v.seconds || 0) * 1000000000n + BigInt(v.nanos || 0); // rule literal
  const m = DURATION_RE.exec(v);
  if (!m) return null;
  const n = BigInt(m[2]) * 1000000000n + BigInt((m[3] || '').padEnd(9, '0') || '0');
  return m[1] ? -n : n;
}

// merge all parsedOptions entries named `key` into one object (deep)
function deepMerge(a, b) {
  if (!isObj(a) || !isObj(b)) return b;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out;
}
function optionObject(obj, key) {
  let out;
  for (const po of obj.parsedOptions || []) if (key in po) out = out === undefined ? po[key] : deepMerge(out, po[key]);
  if (out === undefined && obj.options) {
    if (key in obj.options) return obj.options[key];
    // fall back to flattened "(key).a.b" options
    const prefix = key + '.';
    for (const [k, v] of Object.entries(obj.options)) {
      if (!k.startsWith(prefix)) continue;
      out = out || {};
      const parts = k.slice(prefix.length).split('.');
      let o = out;
      for (let i = 0; i < parts.length - 1; i++) o = o[parts[i]] = o[parts[i]] || {};
      o[parts[parts.length - 1]] = v;
    }
  }
  return out;
}
const asList = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

// ---------------------------------------------------------------- loader
const IMPORT_RE = /^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm;

export function loadEnvoyRoot(includeDirs) {
  const protobuf = requireDep('protobufjs');
  const locate = (rel) => {
    for (const d of includeDirs) {
      const p = path.join(d, rel);
      if (fs.existsSync(p)) return p;
    }
    return null;
  };
  const builtin = (rel) => rel in protobuf.common || rel === 'google/protobuf/descriptor.proto' && locate(rel) !== null;
  // every candidate file (first include dir wins, as with protoc -I)
  const candidates = new Set();
  for (const d of includeDirs) {
    for (const tree of ROOT_TREES) {
      const top = path.join(d, tree);
      if (!fs.existsSync(top)) continue;
      (function walk(dir) {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const p = path.join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.name.endsWith('.proto') && !RETIRED_ENVOY_API(path.relative(d, p).split(path.sep).join('/'))) candidates.add(path.relative(d, p).split(path.sep).join('/'));
        }
      })(top);
    }
  }
  if (!candidates.size) throw new Error(`no .proto files under ${includeDirs.join(', ')}`);
  // a file is loadable when its whole import closure resolves
  const imports = new Map();
  const importsOf = (rel) => {
    if (!imports.has(rel)) {
      const p = locate(rel);
      imports.set(rel, p ? [...fs.readFileSync(p, 'utf8').matchAll(IMPORT_RE)].map((m) => m[1]) : null);
    }
    return imports.get(rel);
  };
  const verdict = new Map(); // rel -> missing import (string) or '' when loadable
  const missingFor = (rel, seen = new Set()) => {
    if (verdict.has(rel)) return verdict.get(rel);
    if (rel in protobuf.common) return '';
    if (seen.has(rel)) return ''; // an import cycle is protoc's problem, not a missing file
    seen.add(rel);
    const deps = importsOf(rel);
    let missing = deps === null ? rel : '';
    for (const dep of deps ?? []) {
      if (missing) break;
      if (builtin(dep)) continue;
      missing = missingFor(dep, seen);
    }
    verdict.set(rel, missing);
    return missing;
  };
  const files = [];
  const skipped = [];
  for (const rel of [...candidates].sort()) {
    const missing = missingFor(rel);
    if (missing) skipped.push({ file: rel, missing });
    else files.push(rel);
  }
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : locate(target) ?? target);
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  return { root, protobuf, files, skipped };
}

// ---------------------------------------------------------------- validator
export function createValidator(opts = {}) {
  const fromEnv = process.env.ENVOY_API_DIR ? [process.env.ENVOY_API_DIR] : [];
  const given = [].concat(opts.protoDirs ?? opts.protoDir ?? fromEnv);
  const includeDirs = given.length ? [...given.map((d) => path.resolve(d)), path.dirname(require.resolve('protobufjs/package.json'))] : defaultIncludeDirs();
  const protoDir = includeDirs.join(path.delimiter);
  const { root, protobuf, files, skipped } = loadEnvoyRoot(includeDirs);
  const fieldIndex = new WeakMap();
  let allTypeNames = null;

  function fieldsOf(type) {
    let idx = fieldIndex.get(type);
    if (!idx) {
      idx = new Map();
      for (const f of type.fieldsArray) {
        idx.set(f.name, f); // protobuf accepts the proto name, its lowerCamelCase form and json_name
        idx.set(jsonName(f.name), f);
        if (f.options && f.options.json_name) idx.set(f.options.json_name, f);
      }
      fieldIndex.set(type, idx);
    }
    return idx;
  }
  function typeNames() {
    if (!allTypeNames) {
      allTypeNames = [];
      (function walk(ns) {
        for (const o of ns.nestedArray || []) {
          if (o instanceof protobuf.Type) allTypeNames.push(o.fullName.slice(1));
          if (o.nestedArray) walk(o);
        }
      })(root);
    }
    return allTypeNames;
  }
  function lookupMessage(name) {
    try {
      const t = root.lookup(name.startsWith('.') ? name : '.' + name);
      return t instanceof protobuf.Type ? t : null;
    } catch { return null; }
  }

  function validate(value, typeName = DEFAULT_TYPE, vopts = {}) {
    const pgv = vopts.pgv !== false;
    const canonical = vopts.canonical === true;
    const errors = [];
    const warnings = [];
    const err = (p, m) => errors.push({ path: p, message: m });
    const warn = (p, m) => warnings.push({ path: p, message: m });
    // a form protobuf's JSON parser accepts only in its (default) legacy mode
    const legacy = (p, m) => (canonical ? err : warn)(p, `${m} (accepted by Envoy's JSON parser in legacy mode; not canonical proto3 JSON)`);
    const rootType = lookupMessage(typeName);
    if (!rootType) throw new Error(`unknown root type ${typeName}`);
    const SPECIAL = new Set(['google.protobuf.Duration', 'google.protobuf.Timestamp', 'google.protobuf.FieldMask', 'google.protobuf.ListValue']);

    // ---- structural checks ------------------------------------------------
    function checkMessage(v, type, p, pgvOn) {
      const full = type.fullName.slice(1);
      switch (full) {
        case 'google.protobuf.Any': return checkAny(v, p, pgvOn);
        case 'google.protobuf.Struct':
          if (!isObj(v)) err(p, `expected an object (google.protobuf.Struct), got ${describe(v)}`);
          return;
        case 'google.protobuf.Value':
          return;
        default:
      }
      if ((full in WRAPPERS || SPECIAL.has(full)) && isObj(v)) {
        // legacy: the plain message form, e.g. {"seconds": 5} or {"value": 3}
        legacy(p, `${full} written as an object`);
      } else if (full in WRAPPERS) {
        return checkScalar(v, WRAPPERS[full], p, full);
      } else if (full === 'google.protobuf.Duration') {
        if (typeof v !== 'string' || !DURATION_RE.test(v)) return err(p, `expected a Duration string like "5s" or "0.250s", got ${describe(v)}`);
        const n = durationNanos(v);
        if (n > 315576000000n * 1000000000n || n < -315576000000n * 1000000000n) err(p, 'Duration out of range');
        return;
      } else if (full === 'google.protobuf.Timestamp') {
        if (typeof v !== 'string' || !TIMESTAMP_RE.test(v)) err(p, `expected an RFC 3339 timestamp string, got ${describe(v)}`);
        return;
      } else if (full === 'google.protobuf.FieldMask') {
        if (typeof v !== 'string') err(p, `expected a FieldMask string ("a.b,c"), got ${describe(v)}`);
        return;
      } else if (full === 'google.protobuf.ListValue') {
        if (!Array.isArray(v)) err(p, `expected a list (google.protobuf.ListValue), got ${describe(v)}`);
        return;
      }
      if (!isObj(v)) return err(p, `expected an object (${full}), got ${describe(v)}`);
      const idx = fieldsOf(type);
      const present = new Map(); // Field -> key used
      for (const key of Object.keys(v)) {
        const f = idx.get(key);
        if (!f) {
          const hint = closest(key, idx.keys(), Math.max(2, Math.floor(key.length / 4)));
          err(pathKey(p, key), `unknown field "${key}" in ${full}${hint ? ` (did you mean "${hint}"?)` : ''}`);
          continue;
        }
        if (present.has(f)) {
          const prev = present.get(f);
          if (v[key] === null) continue; // a later null is ignored
          if (v[prev] !== null) {
            if (f.partOf && !(f.options && f.options.proto3_optional)) err(pathKey(p, key), `field "${f.name}" given twice (as "${prev}" and "${key}")`);
            else legacy(pathKey(p, key), `field "${f.name}" given twice (as "${prev}" and "${key}"), the last one wins`);
            checkField(v[prev], f, pathKey(p, prev), false); // shape of the overridden value
          }
        }
        present.set(f, key);
      }
      const isSet = (f) => present.has(f) && (v[present.get(f)] !== null || f.resolvedType?.fullName === '.google.protobuf.Value');
      for (const o of type.oneofsArray) {
        const set = o.fieldsArray.filter(isSet);
        if (set.length > 1) err(p, `oneof "${o.name}" of ${full} allows one field, got: ${set.map((f) => present.get(f)).join(', ')}`);
        if (pgvOn && set.length === 0 && optionObject(o, '(validate.required)') === true) {
          err(p, `${full}: one of [${o.fieldsArray.map((f) => f.name).join(', ')}] is required (oneof "${o.name}")`);
        }
      }
      // Extension wrappers (name + typed_config): Envoy >= 1.39 finds extensions by the @type only
      const tc = type.fields.typed_config;
      if (tc && type.fields.name && tc.resolvedType?.fullName === '.google.protobuf.Any' && v.is_optional !== true) {
        const members = tc.partOf ? tc.partOf.fieldsArray : [tc];
        if (!members.some(isSet)) warn(p, `${full} "${v.name ?? ''}" has no typed_config; Envoy >= 1.39 no longer looks extensions up by name and will reject it`);
      }
      const msgPgv = pgvOn && !(type.options && (type.options['(validate.disabled)'] || type.options['(validate.ignored)']));
      for (const f of type.fieldsArray) {
        const key = present.get(f);
        const fp = pathKey(p, key ?? f.name);
        let val;
        if (key !== undefined) {
          if (isSet(f) && f.options) {
            if (f.options['(envoy.annotations.disallowed_by_default)']) err(fp, `field "${f.name}" of ${full} is deprecated and disallowed by default (needs a runtime override)`);
            else if (f.options.deprecated) warn(fp, `field "${f.name}" of ${full} is deprecated`);
          }
          val = checkField(v[key], f, fp, msgPgv);
        }
        if (msgPgv) applyFieldRules(f, val, isSet(f), fp);
      }
    }

    function checkAny(v, p, pgvOn) {
      if (!isObj(v)) return err(p, `expected an object with "@type" (google.protobuf.Any), got ${describe(v)}`);
      const url = v['@type'];
      if (url === undefined || url === null) {
        if (Object.keys(v).length === 0) return legacy(p, 'empty google.protobuf.Any ({} without "@type")');
        return err(p, 'google.protobuf.Any without "@type"');
      }
      const tp = pathKey(p, '@type');
      if (typeof url !== 'string') return err(tp, `"@type" must be a string, got ${describe(url)}`);
      const slash = url.lastIndexOf('/');
      if (slash <= 0) return err(tp, `"@type" must look like "type.googleapis.com/<full.message.Name>", got ${JSON.stringify(url)}`);
      if (url.slice(0, slash) !== 'type.googleapis.com') warn(tp, `unusual type URL prefix "${url.slice(0, slash)}/" (Envoy only looks at the part after the last "/")`);
      const name = url.slice(slash + 1);
      const t = lookupMessage(name);
      if (!t) {
        const simple = name.split('.').pop();
        const same = typeNames().filter((n) => n.split('.').pop() === simple);
        const hint = same.length && same.length <= 3 ? same.join('" or "') : closest(name, typeNames(), 6);
        return err(tp, `unknown type "${name}" (no such message in the loaded Envoy API protos; if it is a real type, its .proto is not among the loaded include directories ${protoDir}, or it imports a file the package leaves out)${hint ? `; did you mean "${hint}"?` : ''}`);
      }
      const full = t.fullName.slice(1);
      const special = full in WRAPPERS || SPECIAL.has(full) || ['google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.Any'].includes(full);
      if (special) {
        for (const k of Object.keys(v)) if (k !== '@type' && k !== 'value') err(pathKey(p, k), `unknown field "${k}" in an Any holding ${full} (only "value" is allowed)`);
        if ('value' in v) checkMessage(v.value, t, pathKey(p, 'value'), pgvOn);
        return;
      }
      const rest = { ...v };
      delete rest['@type'];
      checkMessage(rest, t, p, pgvOn);
      // Envoy converts a TypedStruct's "value" into the message named by its type_url
      if ((full === 'xds.type.v3.TypedStruct' || full === 'udpa.type.v1.TypedStruct') && typeof rest.type_url === 'string' && isObj(rest.value)) {
        const inner = lookupMessage(rest.type_url.slice(rest.type_url.lastIndexOf('/') + 1));
        if (inner) checkMessage(rest.value, inner, pathKey(p, 'value'), pgvOn);
        else warn(pathKey(p, 'type_url'), `TypedStruct type ${JSON.stringify(rest.type_url)} is not in the loaded protos; its value was not checked`);
      }
    }

    // checks one present field; returns the value as Envoy would see it (legacy forms normalised)
    function checkField(v, f, p, pgvOn) {
      const isValueType = f.resolvedType?.fullName === '.google.protobuf.Value';
      if (v === null && !isValueType) return v; // null = unset
      if (f.map) {
        if (!isObj(v)) { err(p, `expected an object (map<${f.keyType}, ${f.type}>), got ${describe(v)}`); return v; }
        for (const [k, val] of Object.entries(v)) {
          const kp = pathKey(p, k);
          if (f.keyType in INT_RANGES) { const n = toBigInt(k); if (n === null || n < INT_RANGES[f.keyType][0] || n > INT_RANGES[f.keyType][1]) err(kp, `map key ${JSON.stringify(k)} is not a valid ${f.keyType}`); }
          if (f.keyType === 'bool' && k !== 'true' && k !== 'false') err(kp, `map key ${JSON.stringify(k)} is not a bool`);
          if (val === null && !isValueType) { legacy(kp, 'null map value'); continue; }
          checkValue(val, f, kp, pgvOn);
        }
        return v;
      }
      if (f.repeated) {
        let list = v;
        if (!Array.isArray(v)) {
          legacy(p, `single value given for repeated field "${f.name}" (write a list)`);
          list = [v];
        } else if (!isValueType && v.some(Array.isArray)) {
          legacy(p, 'nested list inside a repeated field (it is flattened)');
          list = v.flat(Infinity);
        }
        list.forEach((el, i) => {
          const ep = Array.isArray(v) ? `${p}[${i}]` : p;
          if (el === null && !isValueType) legacy(ep, 'null inside a repeated field (becomes a default element)');
          else checkValue(el, f, ep, pgvOn);
        });
        return list;
      }
      checkValue(v, f, p, pgvOn);
      return v;
    }

    function checkValue(v, f, p, pgvOn) {
      const rt = f.resolvedType;
      if (rt instanceof protobuf.Type) return checkMessage(v, rt, p, pgvOn);
      if (rt instanceof protobuf.Enum) return checkEnum(v, rt, p);
      return checkScalar(v, f.type, p);
    }

    function enumLookup(en, name) {
      if (Object.hasOwn(en.values, name)) return name;
      // Envoy parses with case_insensitive_enum_parsing = true
      return Object.keys(en.values).find((k) => k.toLowerCase() === name.toLowerCase());
    }

    function checkEnum(v, en, p) {
      const full = en.fullName.slice(1);
      if (full === 'google.protobuf.NullValue') { if (v !== null && v !== 'NULL_VALUE') err(p, 'expected null'); return; }
      if (typeof v === 'string') {
        const name = enumLookup(en, v);
        if (name === undefined) {
          if (/^-?\d+$/.test(v)) return; // numeric string is accepted
          const hint = closest(v, Object.keys(en.values), 3);
          return err(p, `unknown value ${JSON.stringify(v)} for enum ${full} (allowed: ${Object.keys(en.values).join(', ')})${hint ? `; did you mean "${hint}"?` : ''}`);
        }
        const vo = en.valuesOptions && en.valuesOptions[name];
        if (vo && vo['(envoy.annotations.disallowed_by_default_enum)']) err(p, `enum value ${name} of ${full} is deprecated and disallowed by default`);
        else if (vo && vo.deprecated) warn(p, `enum value ${name} of ${full} is deprecated`);
        return;
      }
      if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return;
      err(p, `expected an enum name of ${full}, got ${describe(v)}`);
    }

    function checkScalar(v, t, p, wrapper) {
      const what = wrapper ? `${t} (${wrapper})` : t;
      if (t in INT_RANGES) {
        const n = typeof v === 'number' || typeof v === 'string' ? toBigInt(v) : null;
        if (n === null) return err(p, `expected an integer (${what}), got ${describe(v)}`);
        if (n < INT_RANGES[t][0] || n > INT_RANGES[t][1]) err(p, `${v} is out of range for ${what}`);
        return;
      }
      if (FLOAT_TYPES.has(t)) {
        const n = toFloat(v);
        if (n === null) return err(p, `expected a number (${what}), got ${describe(v)}`);
        if (t === 'float' && Number.isFinite(n) && Math.abs(n) > 3.4028235677973366e38) err(p, `${v} is out of range for float`);
        return;
      }
      if (t === 'bool') {
        if (typeof v === 'boolean') return;
        if (typeof v === 'string' && /^(true|false|t|f|yes|no|y|n|1|0)$/i.test(v)) return legacy(p, `bool given as string ${JSON.stringify(v)}`);
        return err(p, `expected true/false (${what}), got ${describe(v)}`);
      }
      if (t === 'string') {
        if (typeof v !== 'string') err(p, `expected a string (${what}), got ${describe(v)}${typeof v === 'number' || typeof v === 'boolean' ? ' - quote it in YAML' : ''}`);
        return;
      }
      if (t === 'bytes') { if (typeof v !== 'string' || !BASE64_RE.test(v)) err(p, `expected a base64 string (${what}), got ${describe(v)}`); return; }
      err(p, `unsupported scalar type ${t}`);
    }

    // ---- protoc-gen-validate rules -------------------------------------
    function applyFieldRules(f, v, set, p) {
      const rules = optionObject(f, '(validate.rules)');
      if (!rules) return;
      const inRealOneof = f.partOf && !(f.options && f.options.proto3_optional);
      const hasPresence = inRealOneof || (f.options && f.options.proto3_optional) || f.resolvedType instanceof protobuf.Type;
      if (f.map) return mapRules(rules.map, set ? v : {}, f, p);
      if (f.repeated) return repeatedRules(rules.repeated, set ? v : [], f, p);
      if (inRealOneof && !set) return; // rules on a oneof member apply only when it is the one chosen
      if (rules.message && rules.message.required && !set) err(p, `value is required (${f.name})`);
      if (rules.any && rules.any.required && !set) err(p, `value is required (${f.name})`);
      if (rules.duration && rules.duration.required && !set) err(p, `value is required (${f.name})`);
      if (rules.timestamp && rules.timestamp.required && !set) err(p, `value is required (${f.name})`);
      if (!set && hasPresence) return; // unset message / oneof member: only `required` applies
      valueRules(rules, set ? v : defaultOf(f), f, p);
    }
    function defaultOf(f) {
      if (f.resolvedType instanceof protobuf.Enum) return 0;
      if (f.type === 'string' || f.type === 'bytes') return '';
      if (f.type === 'bool') return false;
      return 0;
    }
    function repeatedRules(r, arr, f, p) {
      if (!r || !Array.isArray(arr)) return;
      if (r.ignore_empty && arr.length === 0) return;
      if (r.min_items !== undefined && arr.length < Number(r.min_items)) err(p, `needs at least ${r.min_items} item(s), has ${arr.length}`);
      if (r.max_items !== undefined && arr.length > Number(r.max_items)) err(p, `allows at most ${r.max_items} item(s), has ${arr.length}`);
      if (r.unique && arr.every((x) => typeof x !== 'object')) {
        const seen = new Set();
        arr.forEach((x, i) => { if (seen.has(x)) err(`${p}[${i}]`, `duplicate item ${JSON.stringify(x)} (items must be unique)`); seen.add(x); });
      }
      if (r.items) arr.forEach((x, i) => { if (x !== null) itemRules(r.items, x, f, `${p}[${i}]`); });
    }
    function mapRules(r, obj, f, p) {
      if (!r || !isObj(obj)) return;
      const n = Object.keys(obj).length;
      if (r.ignore_empty && n === 0) return;
      if (r.min_pairs !== undefined && n < Number(r.min_pairs)) err(p, `needs at least ${r.min_pairs} entr(ies), has ${n}`);
      if (r.max_pairs !== undefined && n > Number(r.max_pairs)) err(p, `allows at most ${r.max_pairs} entr(ies), has ${n}`);
      for (const [k, x] of Object.entries(obj)) {
        if (r.keys) valueRules(r.keys, k, { type: f.keyType }, pathKey(p, k) + ' (key)');
        if (r.values && x !== null) itemRules(r.values, x, f, pathKey(p, k));
      }
    }
    function itemRules(rules, x, f, p) {
      if (rules.message && rules.message.skip) return;
      valueRules(rules, x, f, p);
    }
    // rules for one present (or defaulted) singular value of field f
    function valueRules(rules, v, f, p) {
      const rt = f.resolvedType;
      const full = rt ? rt.fullName.slice(1) : '';
      if (rt instanceof protobuf.Type) {
        if (full in WRAPPERS) return scalarRules(rules, v, WRAPPERS[full], p);
        if (full === 'google.protobuf.Duration' && rules.duration && v !== null) return durationRules(rules.duration, v, p);
        if (full === 'google.protobuf.Any' && rules.any && isObj(v) && typeof v['@type'] === 'string') {
          if (rules.any.in && !asList(rules.any.in).includes(v['@type'])) err(p, `"@type" must be one of ${asList(rules.any.in).join(', ')}`);
          if (rules.any.not_in && asList(rules.any.not_in).includes(v['@type'])) err(p, `"@type" ${v['@type']} is not allowed here`);
        }
        return;
      }
      if (rt instanceof protobuf.Enum) return enumRules(rules.enum, v, rt, p);
      return scalarRules(rules, v, f.type, p);
    }
    function durationRules(r, v, p) {
      let n = null;
      try { n = durationNanos(v); } catch { /* malformed legacy object, reported elsewhere */ }
      if (n === null) return;
      const fmt = (x) => `${Number(durationNanos(x)) / 1e9}s`;
      if (r.const !== undefined && n !== durationNanos(r.const)) err(p, `must equal ${fmt(r.const)}`);
      rangeCheck(n, r, (x) => durationNanos(x), fmt, p);
    }
    function enumRules(r, v, en, p) {
      if (!r) return;
      const num = typeof v === 'string' ? (en.values[enumLookup(en, v)] ?? (/^-?\d+$/.test(v) ? Number(v) : undefined)) : v;
      if (num === undefined) return; // already reported structurally
      if (r.defined_only && !Object.values(en.values).includes(num)) err(p, `${v} is not a defined value of ${en.fullName.slice(1)}`);
      if (r.const !== undefined && num !== Number(r.const)) err(p, `must equal ${r.const}`);
      if (r.in !== undefined && !asList(r.in).map(Number).includes(num)) err(p, `must be one of ${asList(r.in).join(', ')}`);
      if (r.not_in !== undefined && asList(r.not_in).map(Number).includes(num)) err(p, `${v} is not allowed here`);
    }
    function scalarRules(rules, v, t, p) {
      if (t === 'string' && rules.string && typeof v === 'string') return stringRules(rules.string, v, p);
      if (t === 'bytes' && rules.bytes && typeof v === 'string') return bytesRules(rules.bytes, v, p);
      if (t === 'bool' && rules.bool && rules.bool.const !== undefined && v !== rules.bool.const) return err(p, `must be ${rules.bool.const}`);
      const r = rules[t];
      if (!r) return;
      if (t in INT_RANGES) {
        const n = toBigInt(v);
        if (n === null) return;
        if (r.ignore_empty && n === 0n) return;
        const conv = (x) => BigInt(String(x));
        if (r.const !== undefined && n !== conv(r.const)) err(p, `must equal ${r.const}`);
        if (r.in !== undefined && !asList(r.in).map(conv).includes(n)) err(p, `must be one of ${asList(r.in).join(', ')}`);
        if (r.not_in !== undefined && asList(r.not_in).map(conv).includes(n)) err(p, `${v} is not allowed here`);
        return rangeCheck(n, r, conv, String, p);
      }
      if (FLOAT_TYPES.has(t)) {
        const n = toFloat(v);
        if (n === null) return;
        if (r.ignore_empty && n === 0) return;
        if (r.const !== undefined && n !== Number(r.const)) err(p, `must equal ${r.const}`);
        if (r.in !== undefined && !asList(r.in).map(Number).includes(n)) err(p, `must be one of ${asList(r.in).join(', ')}`);
        if (r.not_in !== undefined && asList(r.not_in).map(Number).includes(n)) err(p, `${v} is not allowed here`);
        return rangeCheck(n, r, Number, String, p);
      }
    }
    // PGV range semantics: if the upper bound is below the lower bound the range is exclusive (outside).
    function rangeCheck(n, r, conv, fmt, p) {
      const lo = r.gt !== undefined ? { v: conv(r.gt), inc: false, raw: r.gt } : r.gte !== undefined ? { v: conv(r.gte), inc: true, raw: r.gte } : null;
      const hi = r.lt !== undefined ? { v: conv(r.lt), inc: false, raw: r.lt } : r.lte !== undefined ? { v: conv(r.lte), inc: true, raw: r.lte } : null;
      const aboveLo = lo && (lo.inc ? n >= lo.v : n > lo.v);
      const belowHi = hi && (hi.inc ? n <= hi.v : n < hi.v);
      const loTxt = lo && `${lo.inc ? '>=' : '>'} ${fmt(lo.raw)}`;
      const hiTxt = hi && `${hi.inc ? '<=' : '<'} ${fmt(hi.raw)}`;
      if (lo && hi) {
        const ok = hi.v >= lo.v ? aboveLo && belowHi : aboveLo || belowHi;
        if (!ok) err(p, `value ${fmt(n)} must be ${loTxt} ${hi.v >= lo.v ? 'and' : 'or'} ${hiTxt}`);
      } else if (lo && !aboveLo) err(p, `value ${fmt(n)} must be ${loTxt}`);
      else if (hi && !belowHi) err(p, `value ${fmt(n)} must be ${hiTxt}`);
    }
    function stringRules(r, s, p) {
      if (r.ignore_empty && s === '') return;
      const chars = [...s].length;
      const bytes = Buffer.byteLength(s, 'utf8');
      const show = JSON.stringify(s.length > 40 ? s.slice(0, 40) + '...' : s);
      if (r.len !== undefined && chars !== Number(r.len)) err(p, `length must be ${r.len} characters, got ${chars}`);
      if (r.min_len !== undefined && chars < Number(r.min_len)) err(p, `length must be at least ${r.min_len} character(s), got ${chars}${chars === 0 ? ' (missing or empty)' : ''}`);
      if (r.max_len !== undefined && chars > Number(r.max_len)) err(p, `length must be at most ${r.max_len} characters, got ${chars}`);
      if (r.len_bytes !== undefined && bytes !== Number(r.len_bytes)) err(p, `must be ${r.len_bytes} bytes long`);
      if (r.min_bytes !== undefined && bytes < Number(r.min_bytes)) err(p, `must be at least ${r.min_bytes} byte(s) long${bytes === 0 ? ' (missing or empty)' : ''}`);
      if (r.max_bytes !== undefined && bytes > Number(r.max_bytes)) err(p, `must be at most ${r.max_bytes} bytes long, got ${bytes}`);
      if (r.const !== undefined && s !== r.const) err(p, `must equal ${JSON.stringify(r.const)}`);
      if (r.prefix !== undefined && !s.startsWith(r.prefix)) err(p, `${show} must start with ${JSON.stringify(r.prefix)}`);
      if (r.suffix !== undefined && !s.endsWith(r.suffix)) err(p, `${show} must end with ${JSON.stringify(r.suffix)}`);
      if (r.contains !== undefined && !s.includes(r.contains)) err(p, `${show} must contain ${JSON.stringify(r.contains)}`);
      if (r.not_contains !== undefined && s.includes(r.not_contains)) err(p, `${show} must not contain ${JSON.stringify(r.not_contains)}`);
      if (r.in !== undefined && !asList(r.in).includes(s)) err(p, `${show} must be one of ${asList(r.in).join(', ')}`);
      if (r.not_in !== undefined && asList(r.not_in).includes(s)) err(p, `${show} is not allowed here`);
      if (r.pattern !== undefined) {
        let re = null;
        try { re = new RegExp(r.pattern, 'u'); } catch { /* RE2-only syntax: skip */ }
        if (re && !re.test(s)) err(p, `${show} does not match pattern ${r.pattern}`);
      }
      if (r.well_known_regex !== undefined) {
        const strict = r.strict !== false;
        const re = !strict ? HEADER_RE.LOOSE : HEADER_RE[r.well_known_regex];
        if (re && !re.test(s)) err(p, `${show} is not a valid ${r.well_known_regex.toLowerCase().replace(/_/g, ' ')}`);
      }
      if (r.ip && !net.isIP(s)) err(p, `${show} is not an IP address`);
      if (r.ipv4 && !net.isIPv4(s)) err(p, `${show} is not an IPv4 address`);
      if (r.ipv6 && !net.isIPv6(s)) err(p, `${show} is not an IPv6 address`);
      if (r.hostname && !HOSTNAME_RE.test(s)) err(p, `${show} is not a hostname`);
      if (r.address && !net.isIP(s) && !HOSTNAME_RE.test(s)) err(p, `${show} is not an IP address or hostname`);
    }
    function bytesRules(r, s, p) {
      if (!BASE64_RE.test(s)) return;
      const n = Buffer.from(s, 'base64').length;
      if (r.ignore_empty && n === 0) return;
      if (r.len !== undefined && n !== Number(r.len)) err(p, `must be ${r.len} bytes`);
      if (r.min_len !== undefined && n < Number(r.min_len)) err(p, `must be at least ${r.min_len} byte(s)`);
      if (r.max_len !== undefined && n > Number(r.max_len)) err(p, `must be at most ${r.max_len} bytes`);
    }

    checkMessage(value, rootType, '$', pgv);
    return { errors, warnings };
  }

  // Parse a config file the way Envoy does: *.json with a JSON parser, anything else
  // as YAML, typing plain scalars like Envoy's yaml-cpp -> ProtobufWkt::Value step.
  function parseText(text, filename = '', notes = []) {
    if (/\.json$/i.test(filename)) return JSON.parse(text);
    const YAML = requireDep('yaml');
    const docs = YAML.parseAllDocuments(text, { schema: 'failsafe', uniqueKeys: true, prettyErrors: true });
    if (!Array.isArray(docs)) throw new Error('empty YAML');
    if (docs.length !== 1) throw new Error(`expected exactly one YAML document, found ${docs.length}`);
    const doc = docs[0];
    if (doc.errors.length) throw new Error(doc.errors.map((e) => e.message).join('\n'));
    const conv = (node, depth = 0) => {
      if (depth > 200) throw new Error('YAML nesting too deep (alias loop?)');
      if (node === null || node === undefined) return null;
      if (YAML.isAlias(node)) return conv(node.resolve(doc), depth + 1);
      if (YAML.isScalar(node)) return yamlCppScalar(node);
      if (YAML.isSeq(node)) return node.items.map((n) => conv(n, depth + 1));
      if (YAML.isMap(node)) {
        const out = {};
        const merged = [];
        for (const pair of node.items) {
          const k = YAML.isScalar(pair.key) ? String(pair.key.value ?? '') : JSON.stringify(conv(pair.key, depth + 1));
          if (k === '<<' && YAML.isScalar(pair.key) && pair.key.type === 'PLAIN') {
            notes.push('YAML merge key "<<" used: resolved here, but check that your Envoy build accepts it (yaml-cpp historically treated "<<" as a plain key)');
            const src = conv(pair.value, depth + 1);
            for (const m of Array.isArray(src) ? src : [src]) if (isObj(m)) merged.push(m);
            continue;
          }
          setOwn(out, k, conv(pair.value, depth + 1));
        }
        for (const m of merged) for (const [k, v] of Object.entries(m)) if (!Object.hasOwn(out, k)) setOwn(out, k, v);
        return out;
      }
      throw new Error(`unsupported YAML node ${node && node.constructor && node.constructor.name}`);
    };
    return conv(doc.contents);
  }

  // An SDS resource file (ConfigSource.path_config_source of an SdsSecretConfig): a
  // DiscoveryResponse checked like any config (unknown fields rejected, Any contents checked),
  // then what Envoy's SdsApi::onConfigUpdate demands of it: exactly one resource, a Secret,
  // named (as the SdsSecretConfig that points here, when `name` is given), holding one kind of
  // secret (of `kind` when given: tls_certificate, validation_context, ...).
  function validateSds(value, vopts = {}) {
    const res = validate(value, SDS_TYPE, vopts);
    const err = (p, m) => res.errors.push({ path: p, message: m });
    if (!isObj(value)) return res;
    const list = value.resources;
    if (!Array.isArray(list) || list.length === 0) {
      err('$.resources', 'an SDS file needs exactly one resource (Envoy: "Missing SDS resources")');
      return res;
    }
    if (list.length > 1) err('$.resources', `an SDS file holds exactly one secret (Envoy: "Unexpected SDS secrets length"), got ${list.length}`);
    if (value.type_url !== undefined && value.type_url !== SECRET_URL) err('$.type_url', `must be ${SECRET_URL} in an SDS file, got ${JSON.stringify(value.type_url)}`);
    list.forEach((r, i) => {
      const p = `$.resources[${i}]`;
      if (!isObj(r)) return;
      if (r['@type'] !== SECRET_URL) err(pathKey(p, '@type'), `an SDS resource must be ${SECRET_URL}, got ${JSON.stringify(r['@type'])}`);
      if (typeof r.name !== 'string' || r.name === '') err(`${p}.name`, 'a secret needs a name: Envoy matches it against the SdsSecretConfig name');
      else if (vopts.name !== undefined && r.name !== vopts.name) err(`${p}.name`, `Envoy expects the secret ${JSON.stringify(vopts.name)} here (Envoy: "Unexpected SDS secret"), got ${JSON.stringify(r.name)}`);
      const kinds = SECRET_KINDS.filter((k) => r[k] !== undefined || r[jsonName(k)] !== undefined);
      if (kinds.length === 0) err(p, `a secret holds one of ${SECRET_KINDS.join(', ')}; this one holds none`);
      else if (vopts.kind !== undefined && kinds[0] !== vopts.kind) err(p, `expected a ${vopts.kind} secret here, got ${kinds[0]}`);
    });
    return res;
  }

  return { root, protoDir, includeDirs, files, skipped, validate, validateSds, parseText };
}

const SDS_TYPE = 'envoy.service.discovery.v3.DiscoveryResponse';
const SECRET_URL = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const SECRET_KINDS = ['tls_certificate', 'session_ticket_keys', 'validation_context', 'generic_secret'];

// yaml-cpp / Envoy typing of one YAML scalar (source/common/protobuf/yaml_utility.cc):
// non-plain (quoted, block, "!") -> string; ~/null/empty -> null; else bool, int64, double, string.
// int64 values outside int32 become decimal strings, as Envoy does.
function yamlCppScalar(node) {
  const raw = node.value === null || node.value === undefined ? '' : String(node.value);
  if (node.type !== 'PLAIN' || node.tag === '!') return raw;
  if (raw === '' || raw === '~' || raw === 'null' || raw === 'Null' || raw === 'NULL') return null;
  const flexible = raw === raw.toLowerCase() || raw === raw.toUpperCase() || raw === raw[0].toUpperCase() + raw.slice(1).toLowerCase();
  if (flexible) {
    const l = raw.toLowerCase();
    if (['y', 'yes', 'true', 'on'].includes(l)) return true;
    if (['n', 'no', 'false', 'off'].includes(l)) return false;
  }
  // C++ istream >> int64 with base auto-detection (0x.. hex, 0.. octal)
  const m = /^([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(raw);
  if (m) {
    const body = m[2];
    let n = body.startsWith('0x') || body.startsWith('0X') ? BigInt(body) : body.length > 1 && body[0] === '0' ? BigInt('0o' + body.slice(1)) : BigInt(body);
    if (m[1] === '-') n = -n;
    if (n >= -(2n ** 63n) && n < 2n ** 63n) return n >= -(2n ** 31n) && n < 2n ** 31n ? Number(n) : n.toString();
  }
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) return Number(raw);
  if (/^[-+]?\.(inf|Inf|INF)$/.test(raw)) return raw[0] === '-' ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(raw)) return NaN;
  return raw;
}

// ---------------------------------------------------------------- CLI
function main(argv) {
  const files = [];
  const protoDirs = [];
  let typeName = DEFAULT_TYPE, pgv = true, quiet = false, canonical = false, sds = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--type') typeName = argv[++i];
    else if (a === '--proto-dir') protoDirs.push(argv[++i]);
    else if (a === '--no-pgv') pgv = false;
    else if (a === '--sds') sds = true;
    else if (a === '--canonical') canonical = true;
    else if (a === '--quiet' || a === '-q') quiet = true;
    else if (a === '-h' || a === '--help') {
      const lines = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
      console.log(lines.slice(1, lines.findIndex((l) => l.startsWith('// PROGRAMMATIC'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
      return 0;
    } else if (a.startsWith('--')) { console.error(`unknown option ${a} (see --help)`); return 2; }
    else files.push(a);
  }
  if (!files.length || !typeName) { console.error('usage: envoy-validate.mjs [--type NAME | --sds] [--proto-dir DIR] [--canonical] [--no-pgv] [--quiet] FILE...'); return 2; }
  let v;
  try { v = createValidator(protoDirs.length ? { protoDirs } : {}); } catch (e) { console.error(`envoy-validate: ${e.message}`); return 2; }
  let status = 0;
  for (const file of files) {
    const label = files.length > 1 ? `${file}: ` : '';
    let obj;
    const notes = [];
    try {
      const text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
      obj = v.parseText(text, file, notes);
    } catch (e) { console.error(`${label}cannot read/parse: ${e.message}`); status = Math.max(status, 2); continue; }
    let res;
    try { res = sds ? v.validateSds(obj, { pgv, canonical }) : v.validate(obj, typeName, { pgv, canonical }); } catch (e) { console.error(`${label}${e.message}`); status = Math.max(status, 2); continue; }
    if (!quiet) {
      for (const n of new Set(notes)) console.error(`${label}warning: ${n}`);
      for (const w of res.warnings) console.error(`${label}warning: ${w.path}: ${w.message}`);
    }
    if (res.errors.length) {
      for (const e of res.errors) console.log(`${label}error: ${e.path}: ${e.message}`);
      console.log(`${label}invalid (${res.errors.length} error${res.errors.length > 1 ? 's' : ''})`);
      status = Math.max(status, 1);
    } else if (!quiet) console.log(`${label}valid`);
  }
  return status;
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
