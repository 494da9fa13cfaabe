// trimHeap (malloc_trim through koffi): the C heap's free pages go back to the kernel. glibc
// keeps freed blocks for reuse, and RSS with them, when live blocks sit between them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimHeap } from '../../src/lib/libc.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const anonMiB = () => Number(/RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;

const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime !== undefined;

// On musl (no malloc_trim) trimHeap says so and does nothing: the test checks that instead of skipping.
if (!glibc) test('without glibc trimHeap is a no-op that says so', () => assert.equal(trimHeap(), false));
else test('memory freed between live blocks goes back to the kernel', () => {
  // 64 MiB in 16 KiB blocks (below glibc's mmap threshold: the C heap), every 16th kept alive
  // so that the freed ones are holes that free() alone does not return.
  let blocks: Buffer[] = [];
  for (let i = 0; i < 4096; i++) blocks.push(Buffer.alloc(16 * 1024, 1));
  blocks = blocks.filter((_, i) => i % 16 === 0);
  gc();
  const before = anonMiB();
  assert.equal(trimHeap(), true, 'glibc has malloc_trim');
  const after = anonMiB();
  assert.ok(before - after > 32, `RssAnon ${before.toFixed(1)} → ${after.toFixed(1)} MiB: less than half of the 60 MiB freed came back`);
  assert.equal(blocks.length, 256);
});
