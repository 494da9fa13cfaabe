// One line saying how a program applies rotated secrets, for `tee-init check`.
import { formatDuration } from '../duration.ts';
import type { ReloadSpec } from './types.ts';

export function describeReload(reload: ReloadSpec, quote: (argv: readonly string[]) => string): string {
  if (reload === 'restart') return 'on rotation: restart (stop signal and grace period, then started again)';
  if (reload === 'none') return 'on rotation: nothing (the program keeps what it read)';
  if ('signal' in reload) return `on rotation: send ${reload.signal}`;
  return `on rotation: run ${quote(reload.exec)} (must exit 0 within ${formatDuration(reload.timeoutMs)})`;
}
