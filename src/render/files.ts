// run.files: config files rendered from the user's templates into the output directory.
import { basename, dirname } from 'node:path';
import { configError } from '../lib/errors.ts';
import { show } from './params.ts';
import { expandData, expandText, fieldOf, type Scope } from './placeholders.ts';
import { FILE_MODE } from './presets/preset.ts';
import { toJson, toYaml } from './serialize.ts';
import type { FileTemplate, RenderedFile } from './types.ts';

const FORMATS = ['json', 'yaml', 'text'] as const;

/** A plain name inside the output directory: no directories, no dot files' `.`/`..`. */
export function checkFileName(name: unknown, field: string): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw configError(`${field}: expected a plain file name (no "/"), got ${show(name)}`);
  }
  return name;
}

/**
 * 0400 by default; an octal string ("0440") or a number. The same rule as secrets' modes (the
 * config schema): readable by the owner, writable by nobody else, no setuid/setgid/sticky bit
 * (execute bits are allowed: a rendered file may be a script).
 */
export function fileMode(mode: unknown, field: string): number {
  if (mode === undefined) return FILE_MODE;
  const n = typeof mode === 'string' && /^0?[0-7]{3}$/.test(mode) ? parseInt(mode, 8) : mode;
  if (typeof n !== 'number' || !Number.isInteger(n) || (n & ~0o755) !== 0 || (n & 0o400) === 0) {
    throw configError(`${field}: expected a file mode such as "0400" or "0440" (owner-readable, writable by nobody else), got ${show(mode)}`);
  }
  return n;
}

function formatOf(file: FileTemplate, field: string): (typeof FORMATS)[number] {
  if (file.format !== undefined) {
    if (!(FORMATS as readonly string[]).includes(file.format)) throw configError(`${field}.format: expected one of ${FORMATS.join(', ')}, got ${show(file.format)}`);
    if (file.format === 'text' && typeof file.template !== 'string') throw configError(`${field}.format: text needs a string template`);
    if (file.format !== 'text' && typeof file.template === 'string') throw configError(`${field}.format: ${file.format} needs a data template (a mapping or list), not a string`);
    return file.format;
  }
  if (typeof file.template === 'string') return 'text';
  if (/\.json$/i.test(file.name)) return 'json';
  if (/\.ya?ml$/i.test(file.name)) return 'yaml';
  throw configError(`${field}.name: a data template is written as JSON or YAML: name the file *.json, *.yaml or *.yml (or set format)`);
}

export function renderFiles(files: unknown, scope: Scope): RenderedFile[] {
  if (files === undefined) return [];
  if (!Array.isArray(files)) throw configError(`run.files: expected a list, got ${show(files)}`);
  return files.map((file: FileTemplate, i) => {
    const field = fieldOf('run.files', i);
    if (file === null || typeof file !== 'object') throw configError(`${field}: expected a mapping with name and template`);
    const name = checkFileName(file.name, `${field}.name`);
    const mode = fileMode(file.mode, `${field}.mode`);
    const tpl = file.template;
    if (tpl === null || (typeof tpl !== 'string' && typeof tpl !== 'object')) {
      throw configError(`${field}.template: expected text, a mapping or a list, got ${show(tpl)}`);
    }
    const format = formatOf(file, field);
    const content =
      format === 'text'
        ? expandText(tpl as string, scope, `${field}.template`, { noControlChars: true })
        : (format === 'json' ? toJson : toYaml)(expandData(tpl, scope, `${field}.template`));
    return { name, content, mode };
  });
}

/** Rendered files must not overwrite each other, the preset's own or a materialized secret. */
export function checkCollisions(presetFiles: readonly RenderedFile[], userFiles: readonly RenderedFile[], scope: Scope, preset: string): void {
  const taken = new Map<string, string>();
  for (const [secret, ref] of Object.entries(scope.secrets)) {
    if (ref.path !== undefined && dirname(ref.path) === scope.outputDir) taken.set(basename(ref.path), `the file of secrets.${secret}`);
  }
  for (const f of presetFiles) {
    const other = taken.get(f.name);
    if (other !== undefined) throw configError(`run.preset: the ${preset} preset writes ${show(f.name)}, which is already ${other}: give that secret another file: name`);
    taken.set(f.name, `the ${preset} preset's file`);
  }
  userFiles.forEach((f, i) => {
    const other = taken.get(f.name);
    if (other !== undefined) throw configError(`run.files[${i}].name: ${show(f.name)} is already ${other}`);
    taken.set(f.name, `run.files[${i}]`);
  });
}
