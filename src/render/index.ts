// The render stage: from run (preset, with, command, env, files) and the materialized secrets'
// paths to the child's argv, its extra environment and the config files to write.
// Every failure is a config error (exit 78) whose message starts with the field at fault.
import { isAbsolute, join, normalize } from 'node:path';
import { stringify } from 'yaml';
import { configError } from '../lib/errors.ts';
import { checkCollisions, renderFiles } from './files.ts';
import { mapping, show } from './params.ts';
import { expandArgv, expandText, fieldOf, secretRefs, type Scalar, type Scope } from './placeholders.ts';
import { PRESETS } from './presets/index.ts';
import type { Preset, SecretRole } from './presets/preset.ts';
import { PRESET_NAMES, type RenderInput, type Rendered, type RunSpec, type SecretRef } from './types.ts';

export type { FileTemplate, PresetName, ReloadSpec, RenderInput, Rendered, RenderedFile, RunSpec, SecretRef } from './types.ts';
export { PRESET_NAMES } from './types.ts';

function presetOf(run: RunSpec): Preset {
  const name = run.preset ?? 'none';
  if (!(PRESET_NAMES as readonly string[]).includes(name)) {
    throw configError(`run.preset: unknown preset ${show(name)} (presets: ${PRESET_NAMES.join(', ')})`);
  }
  const preset = PRESETS[name];
  if (!preset.takesCommand && run.command !== undefined && run.command.length > 0) {
    throw configError(`run.command: the ${name} preset builds the command itself; put extra arguments in run.with.args, or use preset: none`);
  }
  return preset;
}

/** The output directory, normalized; undefined when the run has none. */
function checkOutputDir(dir: unknown): string | undefined {
  if (dir === undefined || dir === '') return undefined;
  if (typeof dir !== 'string' || !isAbsolute(dir) || dir.includes('\0')) throw configError(`output.dir: expected an absolute path, got ${show(dir)}`);
  const n = normalize(dir);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** `{{tls.<role>}}` for each secret the preset needs: configured, and materialized as a file. */
function secretPaths(roles: readonly SecretRole[], secrets: Readonly<Record<string, SecretRef>>, preset: string): Record<string, Scalar> {
  const out: Record<string, Scalar> = {};
  for (const { role, name, what, field } of roles) {
    const renamed = field !== 'run.preset';
    if (!Object.hasOwn(secrets, name)) {
      throw configError(
        `${field}: the ${preset} preset needs secret "${name}" (${what}), which is not configured: add secrets.${name} with file:${renamed ? '' : `, or name another secret in run.with.${role}`}`,
      );
    }
    const path = secrets[name]!.path;
    if (path === undefined) {
      throw configError(`${field}: the ${preset} preset passes secret "${name}" (${what}) to the program as a file, but it has no file: (add file: to secrets.${name})`);
    }
    out[`tls.${role}`] = path;
  }
  return out;
}

function renderEnv(env: unknown, scope: Scope): Record<string, string> {
  if (env === undefined) return {};
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(mapping(env, 'run.env'))) {
    const field = fieldOf('run.env', key);
    if (key === '' || key.includes('=') || key.includes('\0')) throw configError(`${field}: not a valid environment variable name`);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw configError(`${field}: expected a string, got ${show(value)}`);
    }
    const template = String(value);
    if (template.includes('\0')) throw configError(`${field}: contains a NUL byte`);
    out[key] = expandText(template, scope, field);
  }
  return out;
}

/**
 * Renders the child's command line, extra environment and config files.
 * Throws InitError(78) naming the field at fault: an unknown preset or parameter, a bad value,
 * an unknown placeholder, a secret that is not configured or has no file.
 */
export function render(input: RenderInput): Rendered {
  const outputDir = checkOutputDir(input.outputDir);
  const run = input.run ?? {};
  const preset = presetOf(run);
  if (outputDir === undefined && preset.name !== 'none') throw configError(`output.dir: the ${preset.name} preset needs an output directory for its files`);
  if (outputDir === undefined && (run.files?.length ?? 0) > 0) throw configError('run.files: rendered files need an output directory (output.dir)');
  const params = preset.params(run.with);
  // User templates see secrets, output.dir and with; a preset's own templates also see tls.*.
  const user: Scope = { secrets: input.secrets, outputDir, with: params };
  const presetScope: Scope = { ...user, preset: secretPaths(preset.secrets(params), input.secrets, preset.name) };

  const built = preset.build(params, presetScope, run);
  const argv = [...built.argv, ...expandArgv(preset.extraArgs(params), user, 'run.with.args')];
  const env = { ...built.env, ...renderEnv(run.env, user) };
  const files = renderFiles(run.files, user);
  checkCollisions(built.files, files, user, preset.name);
  const out: Rendered = { argv, env, files: [...built.files, ...files] };
  // Only presets that have them (postgres): the plain render stays argv, env and files.
  if (preset.stopSignal) out.stopSignal = preset.stopSignal;
  if (preset.ready) out.ready = preset.ready(params, presetScope);
  if (preset.reload) out.reload = preset.reload(params, presetScope);
  return out;
}

/**
 * The secrets that must be configured with `file:` for this run: the preset's (ca, cert, key
 * unless with renames them) and every `{{secrets.NAME.path}}` in command, env, files and
 * with.args. For `tee-init check`; throws InitError(78) on a bad preset or parameter.
 */
export function requiredSecrets(run: RunSpec): string[] {
  const preset = presetOf(run);
  const params = preset.params(run.with);
  const names = new Set(preset.secrets(params).map((r) => r.name));
  secretRefs(run.command, names);
  secretRefs(preset.extraArgs(params), names);
  secretRefs(run.env, names);
  secretRefs(run.files?.map((f) => f.template), names);
  return [...names];
}

/**
 * A printable view of what would run (for `tee-init check`, and the golden files): preset,
 * argv, env, and each file with its full path, octal mode and content. Paths only: no secret
 * bytes exist at this stage. Throws like render().
 */
export function describePlan(input: RenderInput): string {
  const rendered = render(input);
  const outputDir = checkOutputDir(input.outputDir);
  return stringify(
    {
      preset: input.run.preset ?? 'none',
      argv: rendered.argv,
      env: rendered.env,
      files: rendered.files.map((f) => ({ path: join(outputDir ?? '', f.name), mode: `0${f.mode.toString(8)}`, content: f.content })),
    },
    { lineWidth: 0, aliasDuplicateObjects: false },
  );
}
