import { createLog, type Log, type LogLevel } from '../../src/log.ts';

/** A real pino logger writing into memory, for unit tests that check what was logged. */
export function memoryLog(level: LogLevel = 'trace'): { log: Log; lines: string[]; records: () => Record<string, unknown>[] } {
  const lines: string[] = [];
  const log = createLog({ level, sink: { write: (l: string) => void lines.push(l) } });
  return { log, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
