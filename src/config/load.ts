// Reading, parsing and checking the config file. Every problem becomes one line that names the
// file and the field path, with exit status 78.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { configError } from '../errors.ts';
import { configSchema, type Config } from './schema.ts';
import { checkListenerReferences } from './schema-listeners.ts';

export interface LoadedConfig {
  path: string;
  /** Directory of the config file: relative `path:` of file secrets are resolved against it. */
  dir: string;
  config: Config;
}

function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    const at = issue.path.length ? `${fieldPath(issue.path)}: ` : '';
    return `${at}unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  return `${fieldPath(issue.path)}: ${issue.message}`;
}

/** Parses config text (YAML or JSON) into a checked Config. `origin` names it in messages. */
export function parseConfig(text: string, origin: string): Config {
  let data: unknown;
  try {
    data = parseYaml(text, { uniqueKeys: true, prettyErrors: true, maxAliasCount: 50 });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
    const what = (err as Error).message.split('\n')[0];
    throw configError(`config ${origin}:${where} is not valid YAML/JSON: ${what}`);
  }
  if (data === null || data === undefined) data = {};
  const result = configSchema.safeParse(data);
  if (!result.success) {
    const issues = result.error.issues.map(describeIssue);
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more: see the log)` : '';
    throw configError(`config ${origin}: ${issues[0]}${more}`, { problems: issues });
  }
  checkReferences(result.data, origin);
  return result.data;
}

/** Cross-field rules the schema cannot express on its own. */
function checkReferences(config: Config, origin: string): void {
  const fail = (field: string, message: string): never => {
    throw configError(`config ${origin}: ${field}: ${message}`);
  };
  const files = new Map<string, string>();
  for (const [name, s] of Object.entries(config.secrets)) {
    if (s.source === 'gcp' && !(s.credentials in config.credentials)) {
      const known = Object.keys(config.credentials);
      fail(`secrets.${name}.credentials`, `no credentials named ${JSON.stringify(s.credentials)} (defined: ${known.length ? known.join(', ') : 'none'})`);
    }
    if (s.file !== undefined) {
      const other = files.get(s.file);
      if (other) fail(`secrets.${name}.file`, `${JSON.stringify(s.file)} is also the file of secrets.${other}`);
      files.set(s.file, name);
    }
    if (s.mode !== undefined && s.file === undefined) fail(`secrets.${name}.mode`, 'a mode needs a file: (a secret without file: stays in memory)');
  }
  for (const f of config.run.files) {
    const other = files.get(f.name);
    if (other) fail(`run.files`, `${JSON.stringify(f.name)} is also the file of secrets.${other}`);
    files.set(f.name, `run.files`);
  }
  checkListenerReferences(config, fail);
}

/** Reads and checks the config file at `path`. */
export function loadConfig(path: string): LoadedConfig {
  const abs = resolve(path);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : `cannot be read (${code})`;
    throw configError(`config file ${abs} ${why}: check --config / TEE_INIT_CONFIG`);
  }
  const config = parseConfig(text, abs);
  const dir = dirname(abs);
  for (const s of Object.values(config.secrets)) {
    if (s.source === 'file' && !isAbsolute(s.path)) s.path = resolve(dir, s.path);
  }
  return { path: abs, dir, config };
}
