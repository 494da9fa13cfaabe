import pkg from '../package.json' with { type: 'json' };
import { Cleanup } from './lib/cleanup.ts';
import { inspectorDisabled, sigusr1Problem } from './no-inspector.ts';
import { parseCli, USAGE, type CliOptions } from './cli.ts';
import { withoutInitSettings } from './lib/env.ts';
import { AbortedBySignal, InitError } from './lib/errors.ts';
import { EXIT } from './lib/exit-codes.ts';
import { createLog, line, type Log } from './lib/log.ts';
import { startReaping } from './supervise/reaping.ts';
import type { ListenerSet } from './proxy/start.ts';
import { Supervisor } from './supervise/supervisor.ts';
import { runUnits } from './run/stage.ts';
import type { HealthConfig } from './config/schema-run.ts';
import type { ProcessPlan } from './run/render-units.ts';
import type { RefreshPlan } from './refresh/refresher.ts';

const DEFAULT_GRACE_PERIOD_MS = 10_000;

/** What the bootstrap (or, with no config, the command line alone) hands to the run stage. */
export interface Prepared {
  /** The process units in start order: run: (or COMMAND) as the one unit `run`, or processes:. */
  units: ProcessPlan[];
  /** In-process listeners (listeners: and psk:). */
  listeners?: ListenerSet | undefined;
  health?: HealthConfig | undefined;
  /** Rotation (refresh:). */
  refresh?: RefreshPlan | undefined;
}

/** Runs tee-init; resolves with the exit status. Never throws. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  // Tools that share nothing with a boot: loaded only when asked for.
  if (argv[0] === 'verify') return (await import('./tools/verify.ts')).verifyCommand(argv.slice(1));
  let cli: CliOptions;
  try {
    cli = parseCli(argv, env);
  } catch (err) {
    line(2, `tee-init: ${(err as Error).message}`);
    return err instanceof InitError ? err.exitCode : EXIT.usage;
  }
  if (cli.subcommand === 'help') return line(1, USAGE), EXIT.ok;
  if (cli.subcommand === 'version') return line(1, `tee-init ${pkg.version}`), EXIT.ok;
  if (cli.subcommand === 'check') return check(cli);
  if (cli.subcommand === 'shares' || cli.subcommand === 'labels') return tool(cli);

  const log = createLog({ level: cli.logLevel ?? 'info', redact: cli.configPath !== undefined });
  const cleanup = new Cleanup(log);
  const supervisor = new Supervisor({ log });
  log.info({ version: pkg.version, pid: process.pid, node: process.version }, 'tee-init starting');
  guardInspector(log);
  const reaper = startReaping({ log, subreaper: cli.subreaper, owned: () => supervisor.ownedPids() });
  const bug = onInternalError(log, supervisor, cleanup);

  try {
    const prepared = await prepare(cli, env, log, cleanup, supervisor.abortSignal);
    // run: (or COMMAND): the command line wins over the config.
    const plans = prepared.units.map((p) => (p.single ? { ...p, gracePeriodMs: cli.gracePeriodMs ?? p.gracePeriodMs, stopSignal: cli.stopSignal ?? p.stopSignal } : p));
    const status = await runUnits({
      log, supervisor, plans, listeners: prepared.listeners, health: prepared.health, refresh: prepared.refresh,
      gracePeriodMs: cli.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS, signalGroup: cli.signalGroup,
    });
    reaper?.reap();
    return bug.happened ? EXIT.software : expected(cli, status, log);
  } catch (err) {
    return failed(log, err);
  } finally {
    cleanup.run();
  }
}

/** tini's -e: a status the operator said the program ends with normally is the init's 0. */
function expected(cli: CliOptions, status: number, log: Log): number {
  if (status === 0 || !cli.expectExit.includes(status)) return status;
  log.info({ status }, `exit status ${status} is expected (--expect-exit): the init exits 0`);
  return 0;
}

/**
 * A bug in the init (an uncaught exception, an unhandled rejection) must neither crash it
 * with the secrets on disk nor leave a child without its init: before the child exists the
 * init wipes and exits 70; while it runs, the child is stopped as by a SIGTERM and the init
 * exits 70 once it is gone.
 */
function onInternalError(log: Log, supervisor: Supervisor, cleanup: Cleanup): { happened: boolean } {
  const state = { happened: false };
  const handle = (err: unknown) => {
    log.error({ err, exitCode: EXIT.software }, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    state.happened = true;
    if (supervisor.running) return supervisor.stop('internal error in tee-init');
    cleanup.run();
    process.exit(EXIT.software);
  };
  process.on('uncaughtException', handle);
  process.on('unhandledRejection', handle);
  return state;
}

/** `tee-init check`: the plan on stdout, or one line per problem on stderr and 78. Reads no token, contacts nothing. */
async function check(cli: CliOptions): Promise<number> {
  const { checkText, problemsOf } = await import('./plan/text.ts');
  try {
    line(1, await checkText(cli.configPath!, { command: cli.command, show: cli.show, etc: cli.etc, warn: (w) => line(2, `tee-init check: warning: ${w}`) }));
    return EXIT.ok;
  } catch (err) {
    for (const problem of problemsOf(err)) line(2, `tee-init check: ${problem}`);
    return err instanceof InitError ? err.exitCode : EXIT.software;
  }
}

/** `tee-init shares ...` and `tee-init labels`: output on stdout, one line of error on stderr. */
async function tool(cli: CliOptions): Promise<number> {
  try {
    let out: string[];
    if (cli.subcommand === 'shares') {
      const { runShares, MAX_INPUT_BYTES } = await import('./tools/shares.ts');
      out = await runShares(cli.shares!, () => readStdin(MAX_INPUT_BYTES));
    } else {
      const { labelsFor } = await import('./tools/labels.ts');
      out = labelsFor(cli.configPath!);
    }
    line(1, out.join('\n'));
    return EXIT.ok;
  } catch (err) {
    line(2, `tee-init ${cli.subcommand}: ${err instanceof Error ? err.message : String(err)}`);
    return err instanceof InitError ? err.exitCode : EXIT.software;
  }
}

/** stdin, at most `limit` bytes (the chunks read are wiped: they may hold a secret). */
async function readStdin(limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > limit) throw new InitError(EXIT.data, `stdin holds more than ${limit} bytes: not a secret or a list of shares`);
    }
    return Buffer.concat(chunks);
  } finally {
    for (const c of chunks) c.fill(0);
  }
}

/** Started without --disable-sigusr1, a SIGUSR1 before our listener existed opens a debugger. */
function guardInspector(log: Log): void {
  if (sigusr1Problem) log.warn(sigusr1Problem);
  if (inspectorDisabled) return;
  const inspector = process.getBuiltinModule('node:inspector');
  if (inspector.url()) {
    inspector.close();
    log.warn('closed a debugger that a SIGUSR1 opened during start-up');
  }
  log.warn('node was started without --disable-sigusr1: run tee-init as `node --disable-sigusr1 tee-init.js` (the bundle\'s shebang does)');
}

async function prepare(cli: CliOptions, env: NodeJS.ProcessEnv, log: Log, cleanup: Cleanup, abort: AbortSignal): Promise<Prepared> {
  if (abort.aborted) throw abort.reason;
  if (cli.configPath === undefined) return { units: [commandUnit(cli.command, env)] };
  const { plan } = await import('./plan/index.ts');
  const { boot } = await import('./pipeline.ts');
  // SIGTERM/SIGINT end the bootstrap at once, whatever it is waiting for.
  const aborted = new Promise<never>((_, reject) => {
    if (abort.aborted) reject(abort.reason);
    abort.addEventListener('abort', () => reject(abort.reason), { once: true });
  });
  // The plan first (every check that needs no network, as `check` makes them), then the boot.
  const made = await Promise.race([plan({ configPath: cli.configPath, command: cli.command, env }), aborted]);
  if (cli.logLevel === undefined) log.level = made.config.log.level;
  const booted = await Promise.race([boot(made, { log, cleanup, abort }), aborted]);
  return booted;
}

/** `tee-init [options] -- COMMAND` with no config: the run stage's one unit, as run: would be. */
function commandUnit(argv: readonly string[], env: NodeJS.ProcessEnv): ProcessPlan {
  return {
    kind: 'process',
    name: 'run',
    field: 'COMMAND',
    single: true,
    after: [],
    child: { argv, env: withoutInitSettings(env) },
    oneshot: false,
    restart: { policy: 'never', max: 0, backoff: { initialMs: 0, maxMs: 0 } },
    gracePeriodMs: undefined,
    reload: 'none',
    secrets: [],
  };
}

/** One line naming what failed, and the status that says what kind of failure it was. */
function failed(log: Log, err: unknown): number {
  if (err instanceof AbortedBySignal) {
    log.info({ signal: err.signal }, 'bootstrap aborted; nothing was started');
    return err.signal === 'SIGINT' ? EXIT.interrupted : EXIT.terminated;
  }
  if (err instanceof InitError) {
    log.error({ ...err.detail, exitCode: err.exitCode }, err.message);
    return err.exitCode;
  }
  log.error({ err, exitCode: EXIT.software }, `internal error: ${(err as Error)?.message ?? err}`);
  return EXIT.software;
}
