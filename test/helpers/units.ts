// Run-stage tests: a config with processes: written to a fresh directory, the real bundle run on
// it, and the fixture program's event lines ("NAME EVENT MILLIS") read back from its stdout.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Options } from 'execa';
import { node, root, startInit, type Started } from './init.ts';

export const unitProgram = join(root, 'test', 'fixtures', 'unit.mjs');

/** The fixture as a process command: `unit('backend', 'port=7000')`. */
export const unit = (name: string, ...options: string[]) => [node, unitProgram, name, ...options];

export interface UnitEvent {
  unit: string;
  event: string;
  at: number;
}

/** Every event line of the fixture in `stdout`, in order. */
export function events(stdout: string): UnitEvent[] {
  return stdout.split('\n').flatMap((l) => {
    const m = /^(\S+) (\S+) (\d+)$/.exec(l);
    return m ? [{ unit: m[1]!, event: m[2]!, at: Number(m[3]) }] : [];
  });
}

export function has(evs: UnitEvent[], unit: string, event: string): UnitEvent | undefined {
  return evs.find((e) => e.unit === unit && e.event === event);
}

type ConfigOf = Record<string, unknown> | ((dir: string) => Record<string, unknown>);

/**
 * Starts the init on `config` (an object, or a function of a fresh tmpfs directory for configs
 * that need one, e.g. output.dir: DIR/out), written as JSON; the directory goes at `cleanup()`.
 */
export function startUnits(config: ConfigOf, args: string[] = [], options: Options = {}): Started & { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join('/dev/shm', 'tee-init-units-'));
  const file = join(dir, 'tee-init.json');
  writeFileSync(file, JSON.stringify(typeof config === 'function' ? config(dir) : config, null, 2));
  const started = startInit(['--config', file, ...args], { stdout: 'pipe', ...options });
  return { ...started, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
