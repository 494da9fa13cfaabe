// Durations as written in configs and on the command line: "250ms", "10s", "2m", "1h", "1m30s".
// A bare number is seconds, like `timeout` and `docker stop -t`.
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/**
 * The longest duration any timer in tee-init may be given: Node's setTimeout takes at most
 * 2^31-1 ms (about 24.8 days) and fires a longer one AT ONCE, with a warning nobody reads. A
 * grace period of 1000h would kill the child immediately; an attempt timeout of 1000h would
 * fail every attempt. So every duration, config or command line, is checked against it here.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Milliseconds, or undefined when `text` is not a duration (or not a finite one). */
export function parseDuration(text: string): number | undefined {
  const ms = parseMs(text);
  return ms !== undefined && Number.isFinite(ms) ? ms : undefined;
}

/** Milliseconds, possibly Infinity (400 nines), or undefined when `text` is not a duration. */
function parseMs(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  if (s === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const at = PART.lastIndex;
    const m = PART.exec(s);
    if (!m || m.index !== at) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return Math.round(total);
}

export type DurationCheck = { ms: number; problem?: undefined } | { ms?: undefined; problem: string };

/**
 * The one rule for every duration: a string as parseDuration reads it, or a number of seconds
 * (YAML/JSON), from `minMs` (0 unless a zero would break the timer) to MAX_DURATION_MS.
 * `problem` says what was written and what to write instead, without naming the field.
 */
export function checkDuration(value: unknown, minMs = 0): DurationCheck {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value) : String(value);
  let ms: number | undefined;
  if (typeof value === 'number') ms = Number.isNaN(value) ? undefined : Math.round(value * 1000);
  else if (typeof value === 'string') ms = parseMs(value);
  if (ms === undefined) return { problem: `${shown} is not a duration: write e.g. 500ms, 30s, 2m, 1h or 1m30s` };
  if (ms < minMs) {
    return { problem: ms < 0 ? `${shown} is negative: write a duration of at least ${formatDuration(minMs)}` : `${shown} is too short: write at least ${formatDuration(minMs)}` };
  }
  if (ms > MAX_DURATION_MS) {
    return { problem: `${shown} is longer than the longest timer Node.js can run (${MAX_DURATION_MS} ms, about 24.8 days): write at most 596h` };
  }
  return { ms };
}

/** The largest whole unit: 1h, 90m, 30s, 250ms (as a config would write it). */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
