import { EXIT, type ExitCode } from './exit-codes.ts';

const INIT_ERROR = Symbol.for('tee-init.InitError');
const ABORTED = Symbol.for('tee-init.AbortedBySignal');

/**
 * A failure tee-init reports as one line and a documented exit status.
 * `message` names the thing at fault and what to do; it is printed as is, so it must never
 * contain secret bytes. `detail` goes to the JSON log only (also never secret bytes).
 */
export class InitError extends Error {
  // The bundle's start path and its lazily loaded stages each hold a copy of this module;
  // `instanceof` answers by this brand, not by which copy made the object.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[INIT_ERROR] === true;
  }
  readonly [INIT_ERROR] = true;
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
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[ABORTED] === true;
  }
  readonly [ABORTED] = true;
  readonly signal: 'SIGINT' | 'SIGTERM';
  constructor(signal: 'SIGINT' | 'SIGTERM') {
    super(`bootstrap aborted by ${signal}`);
    this.name = 'AbortedBySignal';
    this.signal = signal;
  }
}
