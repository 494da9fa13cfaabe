import { EXIT, type ExitCode } from './exit-codes.ts';

/**
 * A failure tee-init reports as one line and a documented exit status.
 * `message` names the thing at fault and what to do; it is printed as is, so it must never
 * contain secret bytes. `detail` goes to the JSON log only (also never secret bytes).
 */
export class InitError extends Error {
  readonly exitCode: ExitCode;
  readonly detail: Record<string, unknown> | undefined;

  constructor(exitCode: ExitCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = 'InitError';
    this.exitCode = exitCode;
    this.detail = detail;
  }
}

export const usageError = (message: string) => new InitError(EXIT.usage, message);
export const configError = (message: string, detail?: Record<string, unknown>) =>
  new InitError(EXIT.config, message, detail);
export const dataError = (message: string, detail?: Record<string, unknown>) =>
  new InitError(EXIT.data, message, detail);

/** Bootstrap aborted by SIGINT/SIGTERM before the child existed. */
export class AbortedBySignal extends Error {
  readonly signal: 'SIGINT' | 'SIGTERM';
  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`bootstrap aborted by ${signal}`);
    this.name = 'AbortedBySignal';
    this.signal = signal;
  }
}
