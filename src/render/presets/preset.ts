// What a preset is: a parameter table for run.with, the secrets it hands the program as files,
// and a build step that fills its templates (templates/*.ts). The table in ./index.ts lists them.
import type { Scope } from '../placeholders.ts';
import type { PresetName, ReloadSpec, RenderedFile, RunSpec } from '../types.ts';

/** A secret the preset passes to the program as a file. */
export interface SecretRole {
  /** Its name in the preset's templates: `{{tls.<role>}}`. */
  role: string;
  /** The configured secret it uses (a default name unless run.with names another). */
  name: string;
  /** What it is, for messages. */
  what: string;
  /** The field to blame when it is missing: run.with.<role> if given there, else run.preset. */
  field: string;
}

export interface PresetOutput {
  argv: string[];
  env?: Record<string, string>;
  files: RenderedFile[];
}

export interface Preset<P extends Record<string, unknown> = Record<string, unknown>> {
  readonly name: PresetName;
  /** Whether run.command is the program to run (none) rather than a mistake next to a preset. */
  readonly takesCommand: boolean;
  /** Parses run.with (unknown keys are errors, defaults applied); also what `{{with.KEY}}` sees. */
  params(raw: unknown): P;
  /** Secrets the program gets as files; each must be configured with `file:`. */
  secrets(params: P): SecretRole[];
  /** User templates among the parameters (e.g. with.args), expanded with the user scope. */
  extraArgs(params: P): readonly string[];
  /**
   * Fills the preset's templates. `scope.preset` holds `tls.<role>` (the secrets' paths) and
   * anything else the preset computed; `run` is there for the `none` preset's command.
   */
  build(params: P, scope: Scope, run: RunSpec): PresetOutput;
  /** What stops the program well when the config names no stopSignal (default SIGTERM). */
  readonly stopSignal?: NodeJS.Signals;
  /** How to tell the program is ready when the config gives no ready: check (processes only). */
  ready?(params: P, scope: Scope): { unix: string } | { tcp: string };
  /** How the program applies rotated secrets when the config names no reload: (default: none). */
  reload?(params: P, scope: Scope): ReloadSpec;
}

/** Default file mode of rendered files: the same as secrets (DESIGN "files 0400 unless configured"). */
export const FILE_MODE = 0o400;
