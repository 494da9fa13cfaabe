// First import of the entry point (see early-signals.ts): ES modules run in import order.
import { installEarlySignals } from './early-signals.ts';

installEarlySignals();
