// Reading process state from /proc: what the kernel knows and Node does not tell.
import { readdirSync, readFileSync } from 'node:fs';

/** Children of every thread of `pid` (orphans may be attached to any of them). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'latin1').split(' ')) {
        if (c) out.push(Number(c));
      }
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** The one-letter state of a process (R, S, D, Z, T, ...), or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name is in parentheses and may itself contain ") ".
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) || undefined;
  } catch {
    return undefined;
  }
}

/** How process `pid` treats signal `n`, from SigCgt/SigIgn in /proc/PID/status. */
export function signalDisposition(pid: number, n: number): 'caught' | 'ignored' | 'default' | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return undefined;
  }
  const bit = (field: string) => {
    const m = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status);
    return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(n - 1)) & 1n) === 1n;
  };
  if (bit('SigCgt')) return 'caught';
  if (bit('SigIgn')) return 'ignored';
  return 'default';
}
