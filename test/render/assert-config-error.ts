import assert from 'node:assert/strict';
import { InitError } from '../../src/lib/errors.ts';
import { EXIT } from '../../src/lib/exit-codes.ts';

/** Asserts that `fn` fails with a config error (exit 78) whose one-line message matches. */
export function throwsConfigError(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof InitError, `expected an InitError, got ${String(err)}`);
    assert.equal(err.exitCode, EXIT.config);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    if (typeof message === 'string') assert.ok(err.message.startsWith(message), `"${err.message}" should start with "${message}"`);
    else assert.match(err.message, message);
    return true;
  });
}
