// How a reload is named in logs, the plan and /metrics.
import type { ReloadSpec } from '../render/types.ts';

export function describeReload(r: ReloadSpec): string {
  if (typeof r === 'string') return r;
  if ('signal' in r) return r.signal;
  return `exec ${r.exec[0]}`;
}
