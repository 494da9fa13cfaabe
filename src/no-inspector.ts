// Imported first, so it runs before anything else in the bundle. Nobody who can signal the
// init may open a debugger inside the TEE, yet SIGUSR1 must reach the child like any other
// signal (the supervisor forwards it).
//  - Started with --disable-sigusr1 (the shebang and the image do): Node never arms the
//    inspector, but it also leaves SIGUSR1 blocked in the main thread for good, so no
//    listener would ever see it. Take the signal with a listener, then unblock it.
//  - Started without the flag: our listener replaces the inspector's handler from here on;
//    main.ts warns, and closes an inspector that a very early SIGUSR1 managed to open.
import { libc } from './lib/libc.ts';

const SIGUSR1 = 10;
process.on('SIGUSR1', () => {});

export let sigusr1Problem: string | undefined;

const FLAG = '--disable-sigusr1';
export const inspectorDisabled =
  process.execArgv.includes(FLAG) || (process.env.NODE_OPTIONS ?? '').split(/\s+/).includes(FLAG);

try {
  if (inspectorDisabled) libc().unblockSignal(SIGUSR1);
} catch (err) {
  sigusr1Problem = `SIGUSR1 stays blocked and will not be forwarded: ${(err as Error).message}`;
}
