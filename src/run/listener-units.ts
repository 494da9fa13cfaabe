// Listeners (`listeners:` and the `psk:` shorthand) as units: each starts through the listener
// engine (src/proxy/start.ts), waiting for its upstream like a boot with run: does. One that
// fronts the processes (it connects to them) opens after all of them; one the processes
// connect through opens first (checkUnits orders them the same way).
import { LISTENER_CONFIGS } from '../config/listeners/index.ts';
import type { Log } from '../lib/log.ts';
import { frontsProgram, startListeners, type ListenerSet } from '../proxy/start.ts';
import type { ListenerUnitSpec } from './types.ts';

export function listenerUnits(set: ListenerSet, processes: readonly string[], log: Log): { first: ListenerUnitSpec[]; last: ListenerUnitSpec[] } {
  const first: ListenerUnitSpec[] = [];
  const last: ListenerUnitSpec[] = [];
  for (const planned of set.list) {
    const fronts = frontsProgram(planned);
    const unit: ListenerUnitSpec = {
      kind: 'listener',
      name: planned.name,
      after: fronts ? processes : [],
      secrets: LISTENER_CONFIGS[planned.config.type]!.secrets(planned.config),
      async start(signal) {
        const [running] = await startListeners({ listeners: [planned], secret: set.secret, tokens: set.tokens, attester: set.attester, jwks: set.jwks, log, signal });
        return running!.handle;
      },
    };
    (fronts ? last : first).push(unit);
  }
  return { first, last };
}
