import { createLog, type Log, type LogLevel } from '../../src/lib/log.ts';

export interface MemoryLog {
  log: Log;
  lines: string[];
  records: () => Record<string, unknown>[];
  text: () => string;
  messages: () => string[];
}

/** A real pino logger writing into memory, for tests that check what was logged. */
export function memoryLog(level: LogLevel = 'trace'): MemoryLog {
  const lines: string[] = [];
  const log = createLog({ level, sink: { write: (l: string) => void lines.push(l) } });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, records, text: () => lines.join(''), messages: () => records().map((r) => String(r.message)) };
}
