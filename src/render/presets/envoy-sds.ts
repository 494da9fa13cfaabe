// What every Envoy preset shares: the bootstrap and SDS file names in the preset scope, the SDS
// resource files (TLS material by path, re-read by Envoy when the init swaps OUT/..data), and
// SAN checks kept in the bootstrap beside an SDS-delivered CA (fragments in templates/envoy.ts).
import { join } from 'node:path';
import * as T from '../../../templates/envoy.ts';
import { expandData, type Scalar, type Scope } from '../placeholders.ts';
import { toYaml } from '../serialize.ts';
import type { RenderedFile } from '../types.ts';
import { FILE_MODE } from './preset.ts';

/** `{{envoy.config}}` and `{{envoy.sds.*}}` (plus a preset's own values) in the preset scope. */
export function envoyScope(scope: Scope, extra: Record<string, Scalar> = {}): Scope {
  // render() refuses a preset without an output directory before building it.
  const out = scope.outputDir!;
  return {
    ...scope,
    preset: {
      ...scope.preset,
      'envoy.config': join(out, T.configFile),
      'envoy.sds.cert': join(out, T.sdsFiles.cert),
      'envoy.sds.ca': join(out, T.sdsFiles.ca),
      ...extra,
    },
  };
}

/** A rendered SDS file: one Secret fragment, filled and serialized like the bootstrap. */
export function sdsFile(name: string, fragment: unknown, scope: Scope, what: string): RenderedFile {
  return { name, content: toYaml(expandData(fragment, scope, what)), mode: FILE_MODE };
}

/** The certificate/key and CA files every Envoy preset's mutual TLS reads. */
export function tlsSdsFiles(scope: Scope): RenderedFile[] {
  return [
    sdsFile(T.sdsFiles.cert, T.certificateSecret, scope, 'templates/envoy.ts certificateSecret'),
    sdsFile(T.sdsFiles.ca, T.trustSecret, scope, 'templates/envoy.ts trustSecret'),
  ];
}

/**
 * Adds SAN matchers to a common_tls_context whose CA comes from SDS: the context becomes a
 * combined_validation_context (the matchers static in the bootstrap, merged by Envoy with the
 * SDS-delivered CA), so a rotation changes the trust, never the policy.
 */
export function matchSans(common: Record<string, unknown>, matchers: readonly unknown[]): void {
  const sds = common.validation_context_sds_secret_config;
  if (sds === undefined) throw new Error('matchSans: the context has no validation_context_sds_secret_config');
  delete common.validation_context_sds_secret_config;
  common.combined_validation_context = {
    default_validation_context: { match_typed_subject_alt_names: structuredClone(matchers) },
    validation_context_sds_secret_config: sds,
  };
}
