// Issue 18, "Failure boundaries": the listener fault-injection test. The whole init (the bundle)
// on the fake Google world, ONE config with every listener type (psk; tls strict with http: and
// XFCC; tls permissive; tunnel server, a tunnel client to it, a tunnel client to a hostile HTTP/2
// server; http-proxy to a hostile TLS destination; metadata), fronting and called by a hostile
// program. A seeded fuzzer throws faults at each listener from the client side and from its
// upstream; after each family the init must be alive and the listener must serve a normal
// request; after the barrage every listener serves, the program is the same process, and the
// log has no internal error. All of it under `workers: 0` and `workers: 2`.
//
// FAULT_SEED=N replays a run (the seed is printed); FAULT_SCALE=2 doubles the barrage;
// FAULT_WAIT_MS (default 600) is how long a hostile client waits for an answer; FAULT_WORKERS=0
// runs one of the two matrices; FAULT_ONLY=REGEX only the families whose name matches (e.g.
// FAULT_ONLY='mtls-http <- client: client cert' to replay one failure).
// A failure names the listener, the direction, the fault family and variant, and what broke
// (the init's exit code, the probe's error, the log lines), with the init's last log lines.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CASES, type Ctx } from './cases.ts';
import { captureClientHello, prng, seedFor } from './fuzz.ts';
import { boot, type Boot } from '../helpers/boot.ts';
import { allocatePorts, badLines, type Certs, fatal, faultConfig, type InitRun, lastLines, LISTENERS, probe, type Ports, setupCerts, startRun, stopRun } from './rig.ts';

const SEED = Number(process.env.FAULT_SEED ?? 0x7ee1);
const SCALE = Number(process.env.FAULT_SCALE ?? 1);
const WAIT_MS = Number(process.env.FAULT_WAIT_MS ?? 600);
const WORKERS = (process.env.FAULT_WORKERS ?? '0,2').split(',').map(Number);
const ONLY = process.env.FAULT_ONLY ? new RegExp(process.env.FAULT_ONLY) : undefined;
console.log(`fault injection: seed ${SEED} (FAULT_SEED=${SEED} replays this run), scale ${SCALE} (FAULT_SCALE), wait ${WAIT_MS} ms (FAULT_WAIT_MS)`);

let certs: Certs;
let dir: string;
let hello: Ctx['hello'];
let pem: { ca: Buffer; cert: Buffer; key: Buffer };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tee-init-fault-'));
  certs = await setupCerts(dir);
  pem = { ca: readFileSync(certs.pki.ca.cert), cert: readFileSync(certs.pki.server.cert), key: readFileSync(certs.pki.server.key) };
  hello = { tls: await captureClientHello(), psk: await captureClientHello({ psk: true }) };
});
after(() => rmSync(dir, { recursive: true, force: true }));

const LOG_BUDGET = Number(process.env.FAULT_LOG_BUDGET ?? 120);

/** A family that made the init write more than LOG_BUDGET lines: the rate limits (20 a minute per kind) did not hold. */
function logFlood(lines: string[]): string | undefined {
  if (lines.length <= LOG_BUDGET) return undefined;
  const byMessage = new Map<string, number>();
  for (const l of lines) {
    // The message without what varies per line (addresses, audiences, attempts).
    const m = (/"message":"((?:[^"\\]|\\.)*)"/.exec(l)?.[1] ?? l).replace(/\d+/g, 'N').slice(0, 160);
    byMessage.set(m, (byMessage.get(m) ?? 0) + 1);
  }
  const top = [...byMessage].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([m, k]) => `      ${k} x ${m}`).join('\n');
  return `the init wrote ${lines.length} log lines for this family (budget ${LOG_BUDGET}, FAULT_LOG_BUDGET); most:\n${top}`;
}

/** Waits until `count` worker threads that died since `mark` have been replaced (at most 35 s: the backoff's cap is 30 s). */
async function replaced(run: InitRun, mark: number, count: number): Promise<void> {
  const done = () => run.log.lines.slice(mark).filter((l) => l.includes('worker thread replaced')).length >= count;
  await run.log.waitFor(done, 35_000).catch(() => {});
}

const indent = (lines: string[]) => lines.slice(0, 5).map((l) => `      ${l.slice(0, 500)}`).join('\n');

// The two matrices run side by side, each with its own world (the metadata family injects faults
// into the fake Google) and its own init; within one, the families run in order.
// The budget is two minutes on a loaded 2-core machine; the timeout is wider so that a slow run
// still says which family broke what instead of being cancelled as a whole.
describe('listener fault injection', { concurrency: WORKERS.length, timeout: 300_000 }, () => {
  for (const workers of WORKERS) matrix(workers);
});

function matrix(workers: number): void {
  // concurrency: 1, or the parent's is inherited and two families would share one init's log.
  describe(`listener faults, workers: ${workers}`, { concurrency: 1 }, () => {
    let b: Boot;
    let ports: Ports;
    let config: Record<string, unknown>;
    /** Every init of this matrix: one that dies is replaced, so that the barrage goes on. */
    const runs: { run: InitRun; diedAt?: string }[] = [];
    const current = () => runs.at(-1)!.run;

    before(async () => {
      b = await boot({ pem });
      const notes: string[] = [];
      // A port that was free a moment ago may be taken by another process when the init binds it: new ports, again.
      for (let attempt = 1; ; attempt++) {
        ports = await allocatePorts();
        notes.length = 0;
        config = faultConfig(b, certs, ports, workers, notes);
        try {
          runs.push({ run: await startRun(b, config) });
          break;
        } catch (err) {
          if (attempt === 3 || !/EADDRINUSE|cannot listen/.test((err as Error).message)) throw err;
        }
      }
      if (workers > 0) for (const note of new Set(notes)) console.log(`workers: ${workers}: ${note}`);
    });
    after(async () => {
      await Promise.all(runs.map(({ run }) => stopRun(run)));
      await b?.close();
    });

    /** The current init, or a fresh one if it died (where it died is already recorded). */
    async function alive(): Promise<InitRun> {
      const r = runs.at(-1)!;
      if (r.run.exit || r.diedAt) {
        await stopRun(r.run);
        runs.push({ run: await startRun(b, config) });
      }
      return current();
    }

    for (const c of CASES) {
      const direction = c.direction === 'client' ? 'client' : 'upstream/program';
      const name = `${c.listener} <- ${direction}: ${c.fault}`;
      if (ONLY && !ONLY.test(name)) continue;
      test(name, async () => {
        let run = await alive();
        const firstRun = run;
        const caseMark = run.log.lines.length;
        const problems: string[] = [];
        let brokenBy: string | undefined;
        const ctx: Ctx = {
          ports, certs, world: b.world, rng: prng(seedFor(SEED, `${workers}:${name}`)), scale: SCALE, waitMs: WAIT_MS, hello,
          probe: async () => void (await probe(c.listener, ports, certs)),
          async variant(variant, fn) {
            run = await alive();
            const mark = run.log.lines.length;
            try {
              const problem = await fn();
              if (problem) problems.push(`[${variant}] ${problem}`);
            } catch {
              // A refusal or a reset is an outcome of a hostile exchange; the checks below decide whether the init coped.
            }
            // Log lines arrive asynchronously: let the init say what happened.
            await new Promise((r) => setImmediate(r));
            const bad = badLines(run, mark);
            if (bad.length) {
              const late = bad.some((l) => l.includes('worker thread ended')) ? ' (a worker\'s end is logged once the thread is gone: it may belong to the variant before)' : '';
              problems.push(`[${variant}] the init logged${late}:\n${indent(bad)}`);
            }
            if (run.exit || bad.some(fatal)) {
              // After an internal error the init stops the program and exits: wait for its status.
              await Promise.race([run.proc, new Promise((r) => setTimeout(r, 15_000).unref())]);
              runs.at(-1)!.diedAt = `${name} [${variant}]`;
              const how = run.exit ? `exited with code ${run.exit.code}${run.exit.signal ? ` (signal ${run.exit.signal})` : ''}` : 'logged an internal error and did not exit within 15 s';
              problems.push(`[${variant}] the init ${how}; its last lines:\n${lastLines(run, 8, mark)}\n      (a new init takes over for the next variant)`);
              return;
            }
            // A dead worker thread leaves its share of the port dark until its replacement: wait for
            // it, so that the next variant meets a serving listener (its death is reported above).
            const deaths = bad.filter((l) => /worker thread ended unexpectedly/.test(l)).length;
            if (deaths) await replaced(run, mark, deaths);
            if (c.probeEach && !brokenBy) {
              try {
                await probe(c.listener, ports, certs);
              } catch (err) {
                brokenBy = variant;
                problems.push(`[${variant}] afterwards ${c.listener} no longer answers a normal request: ${(err as Error).message} (not probed again in this family)`);
              }
            }
          },
        };
        await c.run(ctx);
        run = await alive();
        // The init may see the family's last closes just after the probe's connect: a slot still
        // counted for a moment is no failure, one still held 3 s later is.
        let lastErr: Error | undefined;
        for (const until = Date.now() + 3000; ;) {
          lastErr = await probe(c.listener, ports, certs).then(() => undefined, (err: Error) => err);
          if (!lastErr || Date.now() > until) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        if (lastErr) problems.push(`after the family, ${c.listener} no longer answers a normal request: ${lastErr.message}`);
        if (run === firstRun) {
          const bad = badLines(run, caseMark).filter((l) => !problems.some((p) => p.includes(l.slice(0, 500))));
          if (bad.length) problems.push(`the init logged afterwards:\n${indent(bad)}`);
          const flood = logFlood(run.log.lines.slice(caseMark));
          if (flood) problems.push(flood);
        }
        if (problems.length) {
          assert.fail(`listener ${c.listener}, fault from the ${direction}: ${c.fault} (workers: ${workers}, seed ${SEED})\n` +
            `  what broke:\n${problems.map((p) => `  - ${p}`).join('\n')}\n  the init's last log lines:\n${lastLines(run, 12, run === firstRun ? caseMark : 0)}`);
        }
      });
    }

    test('after the barrage: every listener answers a normal request', async () => {
      const run = await alive();
      const failures: string[] = [];
      for (const l of LISTENERS) {
        try {
          const pid = await probe(l, ports, certs);
          if (pid !== undefined && pid !== run.childPid) failures.push(`${l}: the program answering is pid ${pid}, the init started ${run.childPid}`);
        } catch (err) {
          failures.push(`${l}: ${(err as Error).message}`);
        }
      }
      assert.deepEqual(failures, [], `listeners that no longer serve:\n${failures.join('\n')}\n${lastLines(run)}`);
    });

    test('the init never died, never restarted the program, never logged an internal error', async () => {
      const deaths = runs.filter((r) => r.diedAt).map((r) => `exit ${r.run.exit?.code ?? '(still stopping)'} at ${r.diedAt}`);
      assert.deepEqual(deaths, [], `the init died ${deaths.length} time(s) during the barrage (each was replaced to go on):\n${deaths.join('\n')}`);
      const run = current();
      assert.equal(run.exit, undefined, `the init exited: ${JSON.stringify(run.exit)}\n${lastLines(run)}`);
      const internal = runs.flatMap((r) => r.run.log.lines.filter((l) => /internal error/i.test(l)));
      assert.deepEqual(internal, [], 'log lines that say "internal error" (every init of this matrix)');
      assert.equal(run.log.records.filter((r) => r.message === 'child started').length, 1, 'the program was started once');
    });

    test('SIGTERM: the init stops with the program\'s status, not 70', async () => {
      const run = current();
      const metrics = await fetch(`http://127.0.0.1:${ports.health}/metrics`).then((r) => r.text()).catch((err: Error) => `(no /metrics: ${err.message})`);
      const faults = metrics.split('\n').filter((l) => /connection_faults_total|worker_restarts_total/.test(l) && !l.startsWith('#'));
      if (faults.length) console.log(`workers: ${workers}: ${faults.join('; ')}`);
      run.proc.kill('SIGTERM');
      const result = await run.proc;
      assert.equal(result.exitCode, 0, `the init exited ${result.exitCode}\n${lastLines(run)}`);
    });
  });
}

