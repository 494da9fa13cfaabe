// The three secrets every TLS preset needs, by default named ca, cert and key (DESIGN: "Presets
// look for the secrets ca, cert, key unless with names others").
import { listOf, text, withDefault } from '../params.ts';
import type { SecretRole } from './preset.ts';

export const tlsParams = {
  ca: withDefault(text, 'ca'),
  cert: withDefault(text, 'cert'),
  key: withDefault(text, 'key'),
};

/** Extra program arguments, appended after the preset's own; placeholders allowed. */
export const argsParam = { args: withDefault(listOf(text), [] as string[]) };

const ROLES = [
  ['ca', 'the CA certificate that client certificates must chain to'],
  ['cert', 'the server certificate chain'],
  ['key', "the server certificate's private key"],
] as const;

export function tlsSecrets(params: { ca: string; cert: string; key: string }): SecretRole[] {
  return ROLES.map(([role, what]) => ({
    role,
    name: params[role],
    what,
    // A renamed secret is the with parameter's doing; a default one, the preset's.
    field: params[role] === role ? 'run.preset' : `run.with.${role}`,
  }));
}
