import { writeSync } from 'node:fs';
import pino from 'pino';

export type Log = pino.Logger;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

// Cloud Logging reads `severity` and `message` from a JSON line on stdout/stderr.
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

// Field names that may hold credentials or secret bytes if a caller ever passes them by
// mistake. The first line of defence is never logging such values at all; this is the second.
const REDACT = [
  'token', 'accessToken', 'access_token', 'subjectToken', 'subject_token', 'authorization',
  'headers', 'payload', 'data', 'psk', 'share', '*.token', '*.accessToken', '*.access_token',
  '*.authorization', '*.headers', '*.payload', '*.data', '*.psk', '*.share',
];

/**
 * Writes each line straight to fd 2 with a blocking write. Never touches process.stderr:
 * Node switches a pipe to O_NONBLOCK when it wraps it, and the child shares that file
 * description, so redis or envoy would start seeing EAGAIN on their own stderr.
 * A closed or full stderr must not kill the init, so errors are swallowed.
 */
export const stderrLine = {
  write(line: string): void {
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        writeSync(2, line);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
      }
    }
  },
};

/**
 * Errors are reduced to type, message and a code: library errors (gaxios, google-gax) carry
 * their request config, headers included, and an Authorization header must never be logged.
 */
function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  const e = err as Error & { code?: unknown; status?: unknown };
  const out: Record<string, unknown> = { type: e.name, message: e.message };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.status === 'string' || typeof e.status === 'number') out.status = e.status;
  return out;
}

export interface LogOptions {
  level?: LogLevel;
  /** Redaction costs ~1 ms of start-up; a plain init with no config has no secrets to hide. */
  redact?: boolean;
  sink?: { write(line: string): void };
}

export function createLog({ level = 'info', redact = true, sink = stderrLine }: LogOptions = {}): Log {
  return pino(
    {
      level,
      base: undefined,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
      serializers: { err: errorFields },
      ...(redact ? { redact: { paths: REDACT, censor: '[redacted]' } } : {}),
    },
    sink,
  );
}

/** One line of text for a person (usage, check's plan, a tool's answer) on fd 1 or 2. */
export function line(fd: 1 | 2, text: string): void {
  try {
    writeSync(fd, text.endsWith('\n') ? text : `${text}\n`);
  } catch {
    // stdout/stderr closed: nothing left to tell anyone.
  }
}
