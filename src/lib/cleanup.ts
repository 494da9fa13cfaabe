import type { Log } from './log.ts';

/**
 * Things to undo on the way out (wipe secret files, close listeners), run last-in first-out
 * on every exit path the init survives: child exit, signal, bootstrap failure, even an
 * uncaught exception (through process.on('exit')). Steps are synchronous so that they can
 * run from an 'exit' listener, and each runs at most once.
 */
export class Cleanup {
  readonly #steps: { name: string; run: () => void }[] = [];
  #log: Log | undefined;

  constructor(log?: Log) {
    this.#log = log;
    process.once('exit', this.run);
  }

  add(name: string, run: () => void): void {
    this.#steps.push({ name, run });
  }

  readonly run = (): void => {
    process.off('exit', this.run);
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      try {
        step.run();
      } catch (err) {
        this.#log?.error({ err, step: step.name }, `cleanup step "${step.name}" failed`);
      }
    }
  };
}
