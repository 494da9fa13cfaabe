// The config's JSON Schema (schema/tee-init.schema.json, generated from the zod schemas by
// scripts/schema.ts) is current, every example config names it on its first line for editors
// and validates against it with a real JSON Schema validator (Ajv, draft 2020-12), and it has
// teeth: what the boot refuses for its shape, the schema refuses too.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { renderSchema, SCHEMA_PATH } from '../../scripts/schema.ts';

const root = join(import.meta.dirname, '..', '..');
const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as object;
const validate = new Ajv2020({ strict: false, allErrors: true }).compile(schema);

function* exampleConfigs(dir = join(root, 'examples')): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* exampleConfigs(p);
    else if (e.name.endsWith('.yaml')) yield p;
  }
}

test('schema/tee-init.schema.json is generated from the current zod schemas (node scripts/schema.ts)', () => {
  assert.equal(readFileSync(SCHEMA_PATH, 'utf8'), renderSchema());
});

test('every example config names the schema on its first line and validates against it', () => {
  const configs = [...exampleConfigs()];
  assert.ok(configs.length >= 10, `found ${configs.length} example configs`);
  for (const file of configs) {
    const text = readFileSync(file, 'utf8');
    const want = `# yaml-language-server: $schema=${relative(dirname(file), SCHEMA_PATH)}`;
    assert.equal(text.split('\n')[0], want, `${relative(root, file)}: first line`);
    const ok = validate(parse(text));
    assert.ok(ok, `${relative(root, file)}: ${JSON.stringify(validate.errors, null, 1)}`);
  }
});

test('the schema refuses what the boot refuses for its shape', () => {
  const base = { run: { command: ['true'] } };
  assert.ok(validate(base), JSON.stringify(validate.errors));
  for (const [why, config] of [
    ['an unknown top-level field', { ...base, listners: {} }],
    ['a listener of an unknown type', { ...base, listeners: { a: { type: 'socks', listen: '127.0.0.1:1' } } }],
    ['a tls listener with an unknown field', { ...base, listeners: { a: { type: 'tls', mode: 'strict', listen: '127.0.0.1:1', connect: '127.0.0.1:2', tls: { cert: 'c', key: 'k', ca: 'a' }, xfcc: 'on' } } }],
    ['a log level that does not exist', { ...base, log: { level: 'verbose' } }],
    ['a secret without a source', { ...base, secrets: { a: { ref: 'x' } } }],
  ] as const) {
    assert.equal(validate(config), false, why);
  }
});
