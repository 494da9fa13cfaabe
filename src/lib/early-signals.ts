// The entry point installs these listeners before anything heavy loads (pino, koffi, the CLI):
// from then on no forwarded signal meets its default action, which would kill the init (exit
// 129 for a SIGHUP 40-100 ms after start) or, as PID 1, silently drop it. Signals are only
// queued here; the Supervisor takes them over, and acts on them, once it exists.
import { listenedSignals } from './signals.ts';

const pending: NodeJS.Signals[] = [];
const queue = (signal: NodeJS.Signals): void => {
  pending.push(signal);
};

export function installEarlySignals(): void {
  for (const signal of listenedSignals()) process.on(signal, queue);
}

/**
 * Hands over the queued signals and stops queueing. The caller must have installed its own
 * listeners first: removing the last listener of a signal restores its default action.
 */
export function takeEarlySignals(): NodeJS.Signals[] {
  for (const signal of listenedSignals()) process.off(signal, queue);
  return pending.splice(0);
}
