// When V8 starts marking the old generation, for the data plane's heaps (issue 19, bench/tls-cpu.ts).
//
// Every 16 KiB TLS record reaches JavaScript as a new Buffer, dead at once, and the old
// generation hardly grows. Yet under a TLS stream V8's own rule for starting incremental marking
// fired in the init's heap every ~20 MiB forwarded: 12 mark-compacts per 256 MiB, each freeing
// almost nothing (12.3 → 12.1 MB), ~0.8 ms per MiB of CPU on V8's helper threads, so that
// `workers: 0` cost 2.0× the floor's CPU per MiB (listener threads fell into it now and then:
// 0–6 per run). Started instead once 90% of the growth allowed since the last GC is used, the
// mark-compacts went (12 → 0) and `workers: 0` came to 1.04–1.10× the floor; the refresh
// soak's RSS stayed within its run-to-run spread (docs/BENCHMARKS.md, "Session 3: TLS CPU").
// (Turning incremental marking off did as much for CPU but raised the soak's RSS.)
//
// Set at run time, not on the start line: these are V8-internal flags, and a node whose V8
// lacks one refuses to start on an unknown flag, where here it only prints a line. So they are
// set only on the V8 they were measured on; on another, re-measure and widen the check.
import { setFlagsFromString } from 'node:v8';

export const GC_TRIGGER_FLAGS = ['--incremental-marking-soft-trigger=90', '--incremental-marking-hard-trigger=100'] as const;
const MEASURED_ON_V8_MAJOR = 13; // Node 24

let applied = false;

/** Applies GC_TRIGGER_FLAGS once per process (they are process-wide: every isolate, every worker); false if not this V8. */
export function tuneGcForDataPlane(v8Version: string = process.versions.v8): boolean {
  if (Number(v8Version.split('.')[0]) !== MEASURED_ON_V8_MAJOR) return false;
  if (!applied) {
    for (const flag of GC_TRIGGER_FLAGS) setFlagsFromString(flag);
    applied = true;
  }
  return true;
}
