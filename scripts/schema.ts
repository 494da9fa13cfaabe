// Writes schema/tee-init.schema.json: the config's JSON Schema (draft 2020-12), generated from
// the zod schemas the boot and `check` use, so an editor (yaml-language-server) can complete and
// check a config as it is typed. The build copies it into dist/. `listeners:` is dispatched by
// hand in zod (one type's messages, not a union's): here each entry is a oneOf over the listener
// table's own schemas, keyed by their `type` constant.
//   node scripts/schema.ts          write it
//   node scripts/schema.ts --check  exit 1 if the committed file is out of date
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.ts';
import { LISTENER_CONFIGS } from '../src/config/listeners/index.ts';

export const SCHEMA_PATH = join(import.meta.dirname, '..', 'schema', 'tee-init.schema.json');

type Json = Record<string, unknown>;
const opts = { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' } as const;

export function configJsonSchema(): Json {
  const root = z.toJSONSchema(configSchema, opts) as Json;
  const types = Object.values(LISTENER_CONFIGS).map((t) => {
    const s = z.toJSONSchema(t.schema, opts) as Json;
    delete s.$schema;
    return s;
  });
  const props = root.properties as Record<string, Json>;
  props.listeners = {
    description: 'In-process listeners by name; each is one of the listener types (its `type`).',
    type: 'object',
    propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_-]{0,62}$' },
    additionalProperties: { oneOf: types },
  };
  return {
    title: 'tee-init configuration',
    description: 'Generated from src/config (zod) by scripts/schema.ts: do not edit. The boot and `tee-init check` also apply rules no JSON Schema can say (references between sections, ports, files).',
    ...root,
  };
}

export function renderSchema(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

if (import.meta.main) {
  const text = renderSchema();
  if (process.argv.includes('--check')) {
    if (readFileSync(SCHEMA_PATH, 'utf8') !== text) {
      console.error(`${SCHEMA_PATH} is out of date: run node scripts/schema.ts`);
      process.exit(1);
    }
  } else writeFileSync(SCHEMA_PATH, text);
}
