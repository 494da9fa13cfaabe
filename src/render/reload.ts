// How a program applies rotated secrets, in words: a line for `tee-init check`, a name for logs.
import { formatDuration } from '../lib/duration.ts';
import type { ReloadSpec } from './types.ts';

export function describeReload(reload: ReloadSpec, quote: (argv: readonly string[]) => string): string {
  if (reload === 'restart') return 'on rotation: restart (stop signal and grace period, then started again)';
  if (reload === 'none') return 'on rotation: nothing (the program keeps what it read)';
  if ('signal' in reload) return `on rotation: send ${reload.signal}`;
  return `on rotation: run ${quote(reload.exec)} (must exit 0 within ${formatDuration(reload.timeoutMs)})`;
}

/** Short, for log lines and reload outcomes: SIGHUP, exec redis-cli, restart, none. */
export function reloadName(r: ReloadSpec): string {
  if (typeof r === 'string') return r;
  if ('signal' in r) return r.signal;
  return `exec ${r.exec[0]}`;
}
