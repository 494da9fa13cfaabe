// What a boot checks on this machine before contacting anyone, shared with `tee-init check`
// so that check refuses what the boot would: the users exist and their ids can be used, the
// command line does not replace a preset's, the rendered command fits what execve() takes.
import { type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { configError } from '../lib/errors.ts';
import { resolveUser, type UserIds } from '../lib/users.ts';
import type { Config } from './schema.ts';

export interface RunIdentities {
  /** run.user: the one child runs as it. */
  user: UserIds | undefined;
  /** processes.NAME.user, by process. */
  processUsers: ReadonlyMap<string, UserIds>;
  /** output.owner, or else the user the program(s) run as: who owns the files. */
  owner: UserIds | undefined;
}

/**
 * Resolves run.user, processes.*.user and output.owner; throws InitError(78) naming the field.
 * `attempt` lets check go on to the next after a problem with one.
 */
export function runIdentities(config: Config, etc?: string, attempt = <T>(resolve: () => T): T | undefined => resolve()): RunIdentities {
  const spawnUser = (spec: string, field: string) => attempt(() => resolveUser(spec, field, 'spawn', etc));
  const user = config.run.user ? spawnUser(config.run.user, 'run.user') : undefined;
  const processUsers = new Map<string, UserIds>();
  for (const [name, p] of Object.entries(config.processes ?? {})) {
    const u = p.user ? spawnUser(p.user, `processes.${name}.user`) : undefined;
    if (u) processUsers.set(name, u);
  }
  const ownerSpec = config.output.owner;
  if (ownerSpec) return { user, processUsers, owner: attempt(() => resolveUser(ownerSpec, 'output.owner', 'chown', etc)) };
  if (!config.processes) return { user, processUsers, owner: user };
  // Several processes: the files belong to the one user they run as; with several, say which.
  const specs = [...new Set(Object.values(config.processes).flatMap((p) => (p.user ? [p.user] : [])))];
  if (specs.length > 1) {
    attempt(() => {
      throw configError(`output.owner: the processes run as several users (${specs.join(', ')}); say which one owns the secret files`);
    });
    return { user, processUsers, owner: undefined };
  }
  const first = Object.keys(config.processes).find((n) => processUsers.has(n));
  return { user, processUsers, owner: first === undefined ? undefined : processUsers.get(first) };
}

/** COMMAND on the command line replaces run.command (placeholders and all). */
export function runWithCommand(config: Config, command: readonly string[]): Config['run'] {
  if (command.length === 0) return config.run;
  if (config.run.preset !== 'none') {
    throw configError(`COMMAND was given on the command line, but run.preset ${config.run.preset} builds the command itself: pass extra arguments in run.with.args, or use preset: none`);
  }
  return { ...config.run, command: [...command] };
}

// Linux limits on what execve() takes (include/uapi/linux/limits.h, binfmts.h).
const NAME_MAX = 255;
const PATH_MAX = 4096;
const MAX_ARG_STRLEN = 32 * 4096;
/** The usual ARG_MAX (a quarter of the default 8 MiB stack); the inherited env comes on top. */
const ARG_MAX = 2 * 1024 * 1024;

/** Why execve() would refuse this argv/env (ENAMETOOLONG, E2BIG), if it would. */
export function commandProblem(argv: readonly string[], env: Readonly<Record<string, string>>, field = 'run'): string | undefined {
  const file = argv[0] ?? '';
  const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
  const longPart = file.split('/').find((p) => bytes(p) > NAME_MAX);
  if (bytes(file) >= PATH_MAX || longPart !== undefined) {
    return `${field}.command[0]: the program name is ${bytes(file)} bytes; a path holds at most ${PATH_MAX - 1} bytes and ${NAME_MAX} per name (ENAMETOOLONG)`;
  }
  const strings = [...argv.map((a, i) => [`${field}.command[${i}]`, a] as const), ...Object.entries(env).map(([k, v]) => [`${field}.env.${k}`, `${k}=${v}`] as const)];
  const long = strings.find(([, s]) => bytes(s) + 1 > MAX_ARG_STRLEN);
  if (long) return `${long[0]}: ${bytes(long[1])} bytes; one argument or variable may hold at most ${MAX_ARG_STRLEN - 1} (E2BIG)`;
  const total = strings.reduce((n, [, s]) => n + bytes(s) + 1 + 8, 0);
  if (total > ARG_MAX) return `${field}.command and ${field}.env: ${total} bytes together; the program could not be started with more than ${ARG_MAX} (E2BIG)`;
  return undefined;
}

/** Whether `ids` (undefined: the init's own user) may do `bit` (1 = x) on a file with stats `st`, by its mode bits. */
function may(st: Stats, ids: UserIds | undefined, bit: number): boolean {
  const uid = ids?.uid ?? process.getuid?.() ?? 0;
  const gid = ids?.gid ?? process.getgid?.() ?? 0;
  if (uid === 0) return bit !== 1 || (st.mode & 0o111) !== 0 || st.isDirectory();
  const shift = st.uid === uid ? 6 : st.gid === gid ? 3 : 0;
  return ((st.mode >> shift) & bit) !== 0;
}

/**
 * Why the program `file` will not start as `ids` on this machine, or undefined: a bare name is
 * looked up on PATH as execvp would (directories its user cannot search are skipped), a path is
 * checked as it is. For `tee-init check`, a warning: an image's programs are not on this machine.
 */
export function programProblem(file: string, path: string | undefined, ids: UserIds | undefined, field: string): string | undefined {
  const who = ids ? `uid ${ids.uid}` : 'the init\'s user';
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch {
      return undefined;
    }
  };
  if (file.includes('/')) {
    const st = stat(file);
    if (!st) return `${field}: ${file} does not exist on this machine`;
    if (!st.isFile() || !may(st, ids, 1)) return `${field}: ${file} is not executable by ${who}`;
    return undefined;
  }
  const dirs = (path ?? '').split(':').filter((d) => d !== '');
  const unsearchable: string[] = [];
  for (const dir of dirs) {
    const d = stat(dir);
    if (!d?.isDirectory()) continue;
    const st = stat(join(dir, file));
    if (!st) continue;
    if (!may(d, ids, 1)) {
      unsearchable.push(dir);
      continue;
    }
    if (st.isFile() && may(st, ids, 1)) return undefined;
  }
  return `${field}: ${JSON.stringify(file)} is not found as ${who} on PATH=${path ?? ''}${unsearchable.length ? ` (it is in ${unsearchable.join(', ')}, which ${who} cannot search)` : ''}`;
}
