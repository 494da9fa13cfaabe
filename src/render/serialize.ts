// Rendered config files are produced by serializers from data, never by pasting text together.
import { stringify } from 'yaml';

/**
 * YAML with every string double-quoted. Envoy reads YAML with yaml-cpp, which types plain
 * scalars the YAML 1.1 way (yes/on/y are booleans, 0x10 and 010 are integers); a quoted scalar
 * is always a string, so no value can be retyped by whichever parser reads the file. No line
 * folding and no anchors/aliases: what is written is exactly the data, one value per key.
 */
export function toYaml(data: unknown): string {
  return stringify(data, {
    defaultStringType: 'QUOTE_DOUBLE',
    defaultKeyType: 'PLAIN',
    lineWidth: 0,
    aliasDuplicateObjects: false,
  });
}

export function toJson(data: unknown): string {
  return `${JSON.stringify(data, null, 2)}\n`;
}
