// Loads the shared Envoy schema validator (../shared/tools/envoy-validate.mjs beside the repo, or
// $ENVOY_VALIDATE). It is not part of the repository: missing, it fails the test in CI and skips
// it elsewhere, like a missing tool (test/helpers/tools.ts).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const validatorPath = process.env.ENVOY_VALIDATE ?? resolve(repoRoot, '..', 'shared', 'tools', 'envoy-validate.mjs');

export interface Finding {
  path: string;
  message: string;
}

export interface EnvoyValidator {
  /** Parses YAML the way Envoy (yaml-cpp) types scalars; JSON for *.json. */
  parseText(text: string, filename?: string): unknown;
  validate(value: unknown, typeName?: string, options?: { canonical?: boolean; pgv?: boolean }): { errors: Finding[]; warnings: Finding[] };
}

let loading: Promise<EnvoyValidator> | undefined;

export async function envoyValidator(t: TestContext): Promise<EnvoyValidator | undefined> {
  if (!existsSync(validatorPath)) {
    const message = `the Envoy schema validator is missing at ${validatorPath} (clone the shared folder next to the repo, or set ENVOY_VALIDATE)`;
    if (process.env.CI) throw new Error(message);
    t.skip(message);
    return undefined;
  }
  // It resolves protobufjs and yaml from the working directory first: run from the repo root.
  loading ??= import(pathToFileURL(validatorPath).href).then((m: { createValidator: () => EnvoyValidator }) => m.createValidator());
  return loading;
}
