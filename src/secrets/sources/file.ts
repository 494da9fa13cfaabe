// `source: file`: a local file, for runs outside a TEE, the embedded demo and tests.
import { readFileSync } from 'node:fs';
import { configError, InitError } from '../../errors.ts';
import { EXIT } from '../../exit-codes.ts';

export function readSecretFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw configError(`secret ${name}: file ${path} does not exist (secrets.${name}.path)`);
    if (code === 'EISDIR') throw configError(`secret ${name}: ${path} is a directory (secrets.${name}.path)`);
    throw new InitError(EXIT.noInput, `secret ${name}: file ${path} cannot be read (${code})`);
  }
}
