// First import of the entry point (see lib/early-signals.ts): ES modules run in import order.
import { installEarlySignals } from './lib/early-signals.ts';

installEarlySignals();
