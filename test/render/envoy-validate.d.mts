// Types of envoy-validate.mjs (plain JavaScript so that it also runs as a CLI on any Node).
export interface Finding {
  path: string;
  message: string;
}
export interface ValidateOptions {
  canonical?: boolean;
  pgv?: boolean;
}
export interface EnvoyValidator {
  /** Parses YAML the way Envoy (yaml-cpp) types scalars; JSON for *.json. */
  parseText(text: string, filename?: string, notes?: string[]): unknown;
  validate(value: unknown, typeName?: string, options?: ValidateOptions): { errors: Finding[]; warnings: Finding[] };
  /**
   * An SDS resource file: a DiscoveryResponse (unknown fields rejected) with exactly one Secret,
   * named `name` and of `kind` (tls_certificate, validation_context, ...) when given.
   */
  validateSds(value: unknown, options?: ValidateOptions & { name?: string; kind?: string }): { errors: Finding[]; warnings: Finding[] };
  /** Include directories, joined with the path delimiter. */
  protoDir: string;
  includeDirs: string[];
  /** The .proto files loaded, and those left out because an import is not in the package. */
  files: string[];
  skipped: { file: string; missing: string }[];
}
export function defaultIncludeDirs(): string[];
export function createValidator(options?: { protoDirs?: string[]; protoDir?: string }): EnvoyValidator;
