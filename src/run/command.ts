// A command run beside a program, as that program (its user, its environment): a readiness check
// (ready.exec) or a reload (reload.exec). It must exit 0 within its time; its output is for it
// alone, kept out of the init's and the program's streams (and so out of the logs).
import { execFile } from 'node:child_process';
import type { ChildSpec } from '../supervise/child.ts';

/** Resolves undefined when the command exited 0, else a short reason ("exit 1", "killed by SIGKILL", "ENOENT"). */
export function runCommand(argv: readonly string[], child: Omit<ChildSpec, 'argv'>, owned: Set<number>, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    const proc = execFile(file!, args, { env: child.env, uid: child.uid, gid: child.gid, timeout: timeoutMs, killSignal: 'SIGKILL' }, (err) => {
      if (proc.pid !== undefined) owned.delete(proc.pid);
      if (!err) return resolve(undefined);
      const e = err as NodeJS.ErrnoException & { code?: unknown; signal?: unknown; killed?: boolean };
      if (e.killed && e.signal === 'SIGKILL') return resolve(`did not finish within ${timeoutMs} ms`);
      resolve(typeof e.code === 'number' ? `exit ${e.code}` : e.signal ? `killed by ${String(e.signal)}` : String(e.code ?? e.message));
    });
    // Node waits for it itself: the reaper must not take its status.
    if (proc.pid !== undefined) owned.add(proc.pid);
    proc.stdout?.resume();
    proc.stderr?.resume();
  });
}
