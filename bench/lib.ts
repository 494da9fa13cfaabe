import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export function bundlePath(): string {
  const p = join(root, 'dist', 'tee-init.js');
  if (!existsSync(p)) throw new Error('dist/tee-init.js is missing: run `npm run build` first');
  return p;
}

/** The node flags of a bundle's start line (its shebang), but --disable-sigusr1: what ships. */
export function startLineNodeArgs(bundle: string): string[] {
  const line = /exec node (.*?) "\$0"/.exec(readFileSync(bundle, 'utf8').split('\n')[1] ?? '')?.[1] ?? '';
  return line.split(/\s+/).filter((a) => a && a !== '--disable-sigusr1');
}

export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function markdownTable(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]i?B?)?$/i.exec(s);
  if (!m) throw new Error(`--bytes: ${s} is not a size like 256M or 1G`);
  const unit = (m[2] ?? '').toUpperCase()[0];
  return Math.round(Number(m[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1));
}

/** CPU seconds (user + system, all threads) a process has used: /proc/PID/stat fields 14 and 15. */
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Resident set size of a process, in MiB. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
