// A preset's unix socket in the output directory. Linux keeps a socket's path in sun_path[108],
// NUL included: a longer path makes the program fail at start (redis: "unix socket path too
// long", PostgreSQL: "path ... is too long"), and a program unlinks whatever is at its socket's
// path before binding (a secret's file there would vanish). check and render refuse both first.
import { basename } from 'node:path';
import { configError } from '../../lib/errors.ts';
import type { Scope } from '../placeholders.ts';

/** The longest path a unix socket can have (bytes, without the NUL). */
export const UNIX_PATH_MAX = 107;

/**
 * The socket's path (in the output directory), or a config error: blaming output.dir when the
 * path is too long for a socket, or the secret whose file: takes its name.
 */
export function checkSocketPath(path: string, scope: Scope, preset: string): string {
  const bytes = Buffer.byteLength(path);
  if (bytes > UNIX_PATH_MAX) {
    throw configError(`output.dir: the ${preset} preset's socket ${JSON.stringify(path)} is ${bytes} bytes long; a unix socket path can have at most ${UNIX_PATH_MAX}: use a shorter output.dir`);
  }
  for (const [secret, ref] of Object.entries(scope.secrets)) {
    if (ref.path === path) throw configError(`secrets.${secret}.file: ${JSON.stringify(basename(path))} is the ${preset} preset's socket in the output directory: give the secret another file: name`);
  }
  return path;
}
