// This Node binary at a path another user can execute. A clone under root's 0700 home (e.g.
// /root/x) is not traversable by `nobody`, so a child dropped to nobody cannot run
// node_modules/node/bin/node from there. A hard link in a fresh 0755 directory (the same file,
// no copy) when /tmp shares the clone's filesystem, else a copy.
import { chmodSync, copyFileSync, linkSync, mkdtempSync, rmSync } from 'node:fs';
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
