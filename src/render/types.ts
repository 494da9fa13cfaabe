// The render stage's input and output. Input is the validated config's `run` section plus what
// materialize produced (secret paths); output is what supervise runs and materialize writes.

export const PRESET_NAMES = ['redis', 'envoy-http', 'envoy-network', 'envoy-tunnel-client', 'envoy-tunnel-server', 'postgres', 'none'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** A config-file template of `run.files`. */
export interface FileTemplate {
  /** A plain file name, written into the output directory. */
  name: string;
  /**
   * Text (placeholders substituted as text) or data (filled at the data level, then serialized
   * as JSON or YAML, so no value can change the structure).
   */
  template: string | Record<string, unknown> | unknown[];
  /** json | yaml | text; default: from the name (.json, .yaml/.yml) for data, text for a string. */
  format?: 'json' | 'yaml' | 'text' | undefined;
  /** File mode, a number or an octal string ("0440"); default 0400. */
  mode?: number | string | undefined;
}

export interface RunSpec {
  preset?: PresetName | undefined;
  /** Preset parameters; also the `{{with.KEY}}` placeholders. */
  with?: Record<string, unknown> | undefined;
  /** The command of the `none` preset (a preset builds its own: extra arguments go in with.args). */
  command?: readonly string[] | undefined;
  env?: Record<string, string> | undefined;
  files?: readonly FileTemplate[] | undefined;
}

export interface SecretRef {
  /** Absolute path of the materialized file; absent for a secret kept in memory (no `file:`). */
  path?: string | undefined;
}

export interface RenderInput {
  run: RunSpec;
  /** Every configured secret, by name. */
  secrets: Readonly<Record<string, SecretRef>>;
  /**
   * The (absolute) output directory: `{{output.dir}}`, and where rendered files go. Absent (or
   * '') when the run has none: then a preset, run.files or `{{output.dir}}` is a config error.
   */
  outputDir?: string | undefined;
}

export interface RenderedFile {
  /** File name inside the output directory. */
  name: string;
  content: string;
  mode: number;
}

export interface Rendered {
  /** The child's argv, one element per argument; never a shell string. */
  argv: string[];
  /** Only what run.env (and the preset) adds; the pipeline merges it over the base env. */
  env: Record<string, string>;
  /** Written by materialize into the output directory; argv refers to them by full path. */
  files: RenderedFile[];
  /** The preset's own stop signal (postgres: SIGINT), used when the config names none. */
  stopSignal?: NodeJS.Signals | undefined;
  /** The preset's own readiness check, used when a process's config gives no ready:. */
  ready?: { unix: string } | { tcp: string } | undefined;
  /** The preset's own way to apply rotated secrets, used when the config names no reload:. */
  reload?: ReloadSpec | undefined;
}

/**
 * How a program applies rotated secrets (docs/rotation.md `reload:`): a signal (PostgreSQL: SIGHUP),
 * a command that must exit 0 (redis: `redis-cli … CONFIG SET tls-cert-file …`; argv already
 * rendered, run as the program's user with its environment), a restart (its stop signal and
 * grace period, then started again and awaited ready), or nothing (the program keeps what it
 * read; Envoy reloads by itself through its SDS directory watch).
 */
export type ReloadSpec =
  | { signal: NodeJS.Signals }
  | { exec: readonly string[]; timeoutMs: number }
  | 'restart'
  | 'none';
