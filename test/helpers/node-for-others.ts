// This Node binary at a path another user can execute. A clone under root's 0700 home (e.g.
// /root/x) is not traversable by `nobody`, so a child dropped to nobody cannot run
// node_modules/node/bin/node from there. A hard link in a fresh 0755 directory (the same file,
// no copy) when /tmp shares the clone's filesystem, else a copy.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, linkSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function nodeForOtherUsers(): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-node-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'node');
  try {
    linkSync(process.execPath, path);
  } catch {
    copyFileSync(process.execPath, path);
    chmodSync(path, 0o755);
  }
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Copies of files or directories (the bundle's dist/, a fixture script) in a fresh directory
 * another user can read and execute, for the same reason as nodeForOtherUsers.
 */
export function copiesForOtherUsers(sources: Record<string, string>): { path(name: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-shared-'));
  for (const [name, source] of Object.entries(sources)) cpSync(source, join(dir, name), { recursive: true });
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  return { path: (name) => join(dir, name), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
