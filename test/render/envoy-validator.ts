// The Envoy schema validator (test/render/envoy-validate.mjs) for the tests. It is part of the
// project and reads Envoy's API protos from the @grpc/grpc-js-xds devDependency, so every Envoy
// test runs on a fresh clone: nothing to skip.
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { createValidator, type EnvoyValidator } from './envoy-validate.mjs';

export type { EnvoyValidator, Finding } from './envoy-validate.mjs';
export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const validatorPath = resolve(import.meta.dirname, 'envoy-validate.mjs');

let loaded: EnvoyValidator | undefined;

/** Loads the protos once per test process (~0.5 s). `t` stays for callers written when the
 *  validator lived outside the repository and could be missing. */
export async function envoyValidator(_t?: TestContext): Promise<EnvoyValidator> {
  loaded ??= createValidator();
  return loaded;
}
