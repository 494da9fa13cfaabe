// How a reload is named in log lines (the plan's longer words are in src/render/reload.ts).
import type { ReloadSpec } from '../render/types.ts';

export function reloadName(r: ReloadSpec): string {
  if (typeof r === 'string') return r;
  if ('signal' in r) return r.signal;
  return `exec ${r.exec[0]}`;
}
