import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InitError } from '../../src/lib/errors.ts';
import { checkSecretFile, readSecretFile } from '../../src/secrets/sources/file.ts';

const status = (code: number, pattern: RegExp) => (e: unknown) => e instanceof InitError && e.exitCode === code && pattern.test(e.message);

test('a regular file that says it is empty but is not (/proc/kallsyms): at most limit + 1 bytes are read, then 65', async () => {
  await assert.rejects(readSecretFile('k', '/proc/kallsyms', 1024), status(65, /^secret k \(\/proc\/kallsyms\) is more than 1024 bytes: more than a secret can hold/));
  // check cannot know without reading, and reads nothing: the boot is the one to refuse it.
  assert.doesNotThrow(() => checkSecretFile('k', '/proc/kallsyms', 1024));
});

test('what a boot refuses, check refuses with the same status and line', async () => {
  for (const [path, code, pattern] of [
    ['/dev/null', 78, /^secret s: \/dev\/null is a character device, not a regular file \(secrets\.s\.path\)$/],
    ['/', 78, /^secret s: \/ is a directory, not a regular file/],
    ['/etc/hostname/x', 78, /^secret s: \/etc\/hostname\/x is not a path to a file: one of its directories is a file/],
    ['/no/such/file', 78, /^secret s: file \/no\/such\/file does not exist/],
  ] as const) {
    await assert.rejects(readSecretFile('s', path), status(code, pattern), path);
    assert.throws(() => checkSecretFile('s', path), status(code, pattern), path);
  }
});
