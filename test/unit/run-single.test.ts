// run: (or COMMAND) as the Runner's one `single` unit, against real processes: a stop signal that
// comes before its program could start (a listener it connects through still opening) ends the
// init as tini would have, 128+N, with nothing started.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Runner } from '../../src/run/runner.ts';
import type { ListenerUnitSpec, ProcessUnitSpec } from '../../src/run/types.ts';
import { memoryLog } from '../helpers/log.ts';

function runUnit(marker: string): ProcessUnitSpec {
  return {
    kind: 'process', name: 'run', field: 'COMMAND', single: true, after: ['egress'],
    child: { argv: ['touch', marker], env: process.env },
    oneshot: false, restart: { policy: 'never', max: 0, backoff: { initialMs: 0, maxMs: 0 } },
    gracePeriodMs: 5_000, reload: 'none', secrets: [],
  };
}

for (const [signal, status] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  test(`${signal} while a listener run: connects through is still opening: ${status}, the program never started`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tee-init-single-'));
    try {
      const marker = join(dir, 'started');
      const { log, messages } = memoryLog();
      let opening!: () => void;
      const started = new Promise<void>((resolve) => (opening = resolve));
      // Opens only when aborted (then fails), like a listener waiting on something that never comes.
      const egress: ListenerUnitSpec = {
        kind: 'listener', name: 'egress', after: [], secrets: [],
        start: (abort) => (opening(), new Promise((_, reject) => abort.addEventListener('abort', () => reject(abort.reason), { once: true }))),
      };
      const runner = new Runner({ log, units: [egress, runUnit(marker)], signalGroup: false });
      const done = runner.run();
      await started;
      runner.onSignal(signal);
      assert.equal(await done, status);
      assert.equal(existsSync(marker), false, 'the program was not started');
      assert.ok(messages().includes(`${signal} before the child started: it is not started`), messages().join('\n'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
