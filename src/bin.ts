// Entry point of the bundle. Import order matters: signal listeners first, then the SIGUSR1 guard.
import './early.ts';
import './no-inspector.ts';
import { main } from './main.ts';

process.exit(await main(process.argv.slice(2), process.env));
