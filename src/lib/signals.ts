import { constants } from 'node:os';

/**
 * Signals tee-init listens for and passes on to the child as themselves.
 * Every catchable signal 1-31 is here except:
 *   SIGKILL, SIGSTOP            cannot be caught.
 *   SIGPIPE                     stays ignored (Node's default). The only SIGPIPE an init really
 *                               gets is its own write to a closed log pipe: with a listener that
 *                               write raised it, and forwarding it killed the child (141).
 *   SIGCHLD                     is about the init's own children; it drives reaping instead.
 *   SIGSEGV, SIGBUS, SIGFPE, SIGILL
 *                               are raised by a fault in the init itself. With a JavaScript
 *                               listener the handler returns, the faulting instruction runs
 *                               again, and a crash becomes an endless hang (V8's WebAssembly
 *                               traps rely on its own SIGSEGV handler too). They keep their
 *                               default action, as in tini.
 * Job control: SIGTSTP, SIGTTIN and SIGTTOU stop the child, never the init (an init that
 * stopped itself would leave nobody to forward SIGCONT or reap). A child that handles or
 * ignores them gets them as themselves; one that leaves the default action gets SIGSTOP,
 * because in its own session the kernel would discard them (see Supervisor#asDelivered).
 * SIGCONT, forwarded too, resumes it.
 * SIGUSR1 is forwarded too; Node's own use of it (opening the inspector) is disabled with
 * --disable-sigusr1, and our listener takes the signal even when that flag is missing.
 */
export const FORWARDED_SIGNALS = [
  'SIGHUP', // 1  reload for most daemons
  'SIGINT', // 2  Ctrl-C; starts the grace period
  'SIGQUIT', // 3  quit with core / dump (e.g. goroutine dump); no grace period
  'SIGTRAP', // 5
  'SIGABRT', // 6  abort() in the init still terminates it: glibc re-raises with the default action
  'SIGUSR1', // 10
  'SIGUSR2', // 12
  'SIGALRM', // 14
  'SIGTERM', // 15 docker stop / Confidential Space shutdown; starts the grace period
  'SIGSTKFLT', // 16
  'SIGCONT', // 18
  'SIGTSTP', // 20
  'SIGTTIN', // 21
  'SIGTTOU', // 22
  'SIGURG', // 23
  'SIGXCPU', // 24
  'SIGXFSZ', // 25
  'SIGVTALRM', // 26
  'SIGPROF', // 27
  'SIGWINCH', // 28 terminal resize
  'SIGIO', // 29
  'SIGPWR', // 30
  'SIGSYS', // 31
] as const satisfies readonly NodeJS.Signals[];

export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

/**
 * The signals the init listens for (and so forwards): FORWARDED_SIGNALS, less SIGPROF while the
 * init itself is being profiled (--cpu-prof or --prof, on its command line or in NODE_OPTIONS).
 * V8's sampler ticks on SIGPROF sent to the init's own threads: a listener would take its
 * handler (an empty profile) and forward every tick, killing a program that does not handle it.
 */
export function listenedSignals(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): readonly ForwardedSignal[] {
  const profiled = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--(cpu-prof|prof)(=|$)/.test(a));
  return profiled ? FORWARDED_SIGNALS.filter((s) => s !== 'SIGPROF') : FORWARDED_SIGNALS;
}

/** Stop-the-job signals, whose default action the kernel skips in an orphaned process group. */
export const JOB_CONTROL_SIGNALS: ReadonlySet<string> = new Set(['SIGTSTP', 'SIGTTIN', 'SIGTTOU']);

/** Signals that, forwarded to the child, also mean "stop": they arm the SIGKILL timer. */
export const STOP_SIGNALS: ReadonlySet<string> = new Set(['SIGTERM', 'SIGINT']);

export function signalNumber(name: string): number {
  const n = (constants.signals as Record<string, number>)[name];
  if (n === undefined) throw new Error(`unknown signal ${name}`);
  return n;
}

/** Signals a stop may use: any forwarded one, or SIGKILL. */
export const STOP_SIGNAL_CHOICES: readonly NodeJS.Signals[] = [...FORWARDED_SIGNALS, 'SIGKILL'];

/** "SIGINT", "INT", "int" or "2" → "SIGINT"; undefined when it is not a signal a stop may use. */
export function parseStopSignal(text: string): NodeJS.Signals | undefined {
  const t = text.trim().toUpperCase();
  const name = /^\d+$/.test(t)
    ? Object.entries(constants.signals as Record<string, number>).find(([, n]) => n === Number(t))?.[0]
    : t.startsWith('SIG') ? t : `SIG${t}`;
  return STOP_SIGNAL_CHOICES.find((s) => s === name);
}
