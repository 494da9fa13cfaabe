// The import graph holds the layers of docs/design.md ("Layers: who may import whom"): a module
// imports from its own layer and the layers below, never above, and a listener type's folder
// never imports another type's. A new import that goes the wrong way fails here; the known
// departures are listed below, each to be removed, never added to.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';

const SRC = join(import.meta.dirname, '..', '..', 'src');

// The ground floor (src/lib/): leaves every stage uses; they import only each other.
const FLOOR = /^lib\//;

const LAYERS: [number, string, RegExp][] = [
  [1, 'config', /^config\//],
  [2, 'stages', /^(attest|credentials|secrets|materialize|render)\//],
  [3, 'run', /^(run|supervise|proxy)\//],
  [4, 'orchestration', /^(plan\/|pipeline\.ts|cli\.ts|refresh\/|tools\/)/],
  [5, 'entry', /^(main|bin|early|no-inspector)\.ts$/],
];

function layerOf(path: string): [number, string] {
  if (FLOOR.test(path)) return [0, 'ground floor'];
  for (const [n, name, re] of LAYERS) if (re.test(path)) return [n, name];
  throw new Error(`src/${path} is in no layer: add it to test/unit/layers.test.ts and docs/design.md`);
}

// Known departures (issue "one run model, one plan"): config/plan.ts reads stages and run/, run/
// reads refresh/. Remove entries as the code moves; never add.
const KNOWN = new Set([
  'run/ -> refresh/',
]);

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.name.endsWith('.ts')) yield relative(SRC, p);
  }
}

const group = (p: string) => (p.includes('/') ? `${p.split('/')[0]}/` : p);
/** The listener type whose folder holds `p` (src/proxy/types/<type>/), if any. */
const typeFolder = (p: string) => /^proxy\/types\/([^/]+)\//.exec(p)?.[1];

test('imports never go up a layer (docs/design.md)', () => {
  const wrong: string[] = [];
  const seen = new Set<string>();
  for (const file of sources(SRC)) {
    const text = readFileSync(join(SRC, file), 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"](\.[^'"]+)['"]/g)) {
      const target = normalize(join(dirname(file), m[1] ?? m[2] ?? m[3]!));
      if (target.startsWith('..')) continue; // package.json for the version
      const [from, fromName] = layerOf(file);
      const [to, toName] = layerOf(target);
      const edge = `${group(file)} -> ${group(target)}`;
      const [ownType, otherType] = [typeFolder(file), typeFolder(target)];
      if (ownType && otherType && ownType !== otherType) wrong.push(`src/${file} (listener type ${ownType}) imports src/${target} (listener type ${otherType})`);
      if (to <= from && !(from === 0 && to !== 0)) continue;
      if (KNOWN.has(edge)) {
        seen.add(edge);
        continue;
      }
      wrong.push(`src/${file} (${fromName}) imports src/${target} (${toName})`);
    }
  }
  assert.deepEqual(wrong, [], 'imports that go up a layer');
  const gone = [...KNOWN].filter((e) => !seen.has(e));
  assert.deepEqual(gone, [], 'departures that no longer exist: remove them from KNOWN');
});
