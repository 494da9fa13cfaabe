import { parseArgs } from 'node:util';
import { checkDuration } from './lib/duration.ts';
import { usageError } from './lib/errors.ts';
import { LOG_LEVELS, type LogLevel } from './lib/log.ts';
import { parseStopSignal } from './lib/signals.ts';

export type Subcommand = 'run' | 'check' | 'help' | 'version' | 'shares' | 'labels';

/** What the command line (and the TEE_INIT_* variables that mirror it) asked for. */
export interface CliOptions {
  subcommand: Subcommand;
  configPath: string | undefined;
  gracePeriodMs: number | undefined;
  /** --stop-signal: what a SIGTERM from outside becomes for the single process (run.stopSignal). */
  stopSignal: NodeJS.Signals | undefined;
  logLevel: LogLevel | undefined;
  signalGroup: boolean;
  subreaper: boolean;
  /** -e/--expect-exit CODE (tini's -e): these exit statuses of the program become the init's 0. */
  expectExit: number[];
  /** check --show: also print the rendered argv, env and files. */
  show: boolean;
  /** check --etc DIR: resolve users and groups from DIR/passwd and DIR/group (an image's /etc). */
  etc: string | undefined;
  /** COMMAND [ARG...]; empty when the config's run.command is to be used. */
  command: string[];
  /** `tee-init shares split|combine`: what to do (the shares themselves come on stdin). */
  shares?: SharesOptions;
}

export interface SharesOptions {
  action: 'split' | 'combine';
  /** split: required; combine: how many of the shares on stdin to combine (default: all). */
  threshold: number | undefined;
  /** split: how many shares to make. */
  shares: number | undefined;
  /** split: a fresh random 32-byte secret instead of one read from stdin. */
  random: boolean;
  /** combine: sha256:HEX the combined secret must match. */
  verify: string | undefined;
  /** combine: with both, also print the PSK (HKDF-SHA256 of the secret). */
  salt: string | undefined;
  info: string | undefined;
}

export const USAGE = `Usage:
  tee-init [--config FILE] [options] [--] [COMMAND [ARG...]]
  tee-init check --config FILE [--show] [--etc DIR] [--] [COMMAND [ARG...]]
                                   validate the config (and the COMMAND a boot would get) and
                                   print the plan; --show adds the rendered argv, env and files;
                                   --etc DIR looks users up in DIR/passwd, DIR/group (an image's
                                   /etc) instead of /etc. Reads no token, contacts nobody.
  tee-init shares split --threshold T --shares N [--random]
                                   split a secret (hex on stdin, or --random: 32 fresh bytes) into
                                   N Shamir shares, any T of which give it back (combine: shamir);
                                   prints one hex share a line, then its verify value
  tee-init shares combine [--threshold T] [--verify sha256:HEX] [--salt S --info I]
                                   combine hex shares from stdin (one a line), offline: prints the
                                   verify value, and with --salt/--info the PSK itself
  tee-init labels --config FILE    print the image labels (tee.launch_policy.*) the config needs
  tee-init verify --audience A [--require CLAIM=VALUE ...] HOST:PORT
                                   check that an attested listener runs what you require, bound
                                   to the TLS connection (tee-init verify --help)
  tee-init --help | --version

Runs COMMAND as its child and supervises it as a container init: forwards signals, reaps
orphans, keeps the exit status, stops it with a grace period. With --config it first
attests, fetches the configured secrets to tmpfs and renders the command (see README.md and docs/).

Options:
  -c, --config FILE          config file (YAML or JSON)        env TEE_INIT_CONFIG
      --grace-period DURATION  TERM/INT -> KILL delay (default 10s)  env TEE_INIT_GRACE_PERIOD
      --stop-signal SIGNAL   send SIGNAL instead of SIGTERM to stop the child (e.g. SIGINT)  env TEE_INIT_STOP_SIGNAL
      --log-level LEVEL      trace|debug|info|warn|error (default info)  env TEE_INIT_LOG_LEVEL
  -g, --signal-group         forward signals to the child's process group  env TEE_INIT_SIGNAL_GROUP=1
  -s, --subreaper            reap orphans when not PID 1 (PR_SET_CHILD_SUBREAPER)  env TEE_INIT_SUBREAPER=1
  -e, --expect-exit CODE     the program's exit status CODE counts as success: the init exits 0
                             (tini's -e; repeatable, e.g. -e 143 for a program ended by SIGTERM)
  -h, --help                 show this help
  -V, --version              print the version

Exit status: the child's, or 128+N if it died of signal N; 126/127 command not executable /
not found; 64 usage; 65 data; 66 no attestation token; 69 service unavailable; 77 permission
denied or attestation policy not met; 78 configuration; 130/143 interrupted during bootstrap.`;

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  'grace-period': { type: 'string' },
  'stop-signal': { type: 'string' },
  'log-level': { type: 'string' },
  'signal-group': { type: 'boolean', short: 'g' },
  subreaper: { type: 'boolean', short: 's' },
  'expect-exit': { type: 'string', short: 'e', multiple: true },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  show: { type: 'boolean' },
  etc: { type: 'string' },
} as const;

const TAKES_VALUE = new Set(['--config', '-c', '--grace-period', '--stop-signal', '--log-level', '--etc', '--expect-exit', '-e']);
const SUBCOMMANDS = new Set(['run', 'check']);
const TOOL_OPTIONS = {
  shares: {
    threshold: { type: 'string' },
    shares: { type: 'string' },
    random: { type: 'boolean' },
    verify: { type: 'string' },
    salt: { type: 'string' },
    info: { type: 'string' },
  },
  labels: { config: { type: 'string', short: 'c' } },
} as const;

/**
 * Options end at the first argument that is not an option (or at `--`): everything after it
 * belongs to COMMAND, so `tee-init redis-server --port 0` passes `--port 0` to redis.
 */
function splitAtCommand(argv: readonly string[]): { options: string[]; command: string[] } {
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg === '--') return { options: argv.slice(0, i), command: argv.slice(i + 1) };
    if (!arg.startsWith('-') || arg === '-') break;
    i += TAKES_VALUE.has(arg) ? 2 : 1;
  }
  return { options: argv.slice(0, i), command: argv.slice(i) };
}

function truthy(name: string, value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw usageError(`${name}=${JSON.stringify(value)} is not a boolean: use 1/true or 0/false`);
}

export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliOptions {
  if (argv[0] === 'shares' || argv[0] === 'labels') return parseTool(argv[0], argv.slice(1), env);
  const args = [...argv];
  let subcommand: Subcommand = 'run';
  if (args[0] !== undefined && SUBCOMMANDS.has(args[0])) subcommand = args.shift() as Subcommand;

  const { options, command } = splitAtCommand(args);
  let values;
  try {
    ({ values } = parseArgs({ args: options, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw usageError(`${(err as Error).message.split('\n')[0]} (see tee-init --help)`);
  }
  if (values.help) subcommand = 'help';
  else if (values.version) subcommand = 'version';

  const gracePeriodText = values['grace-period'] ?? env.TEE_INIT_GRACE_PERIOD;
  let gracePeriodMs: number | undefined;
  if (gracePeriodText !== undefined) {
    const { ms, problem } = checkDuration(gracePeriodText);
    const from = values['grace-period'] !== undefined ? '--grace-period' : 'TEE_INIT_GRACE_PERIOD';
    if (problem !== undefined) throw usageError(`${from}: ${problem}`);
    gracePeriodMs = ms;
  }

  const stopSignalText = values['stop-signal'] ?? env.TEE_INIT_STOP_SIGNAL;
  const stopSignal = stopSignalText === undefined ? undefined : parseStopSignal(stopSignalText);
  if (stopSignalText !== undefined && stopSignal === undefined) {
    throw usageError(`--stop-signal ${JSON.stringify(stopSignalText)} is not a signal tee-init can stop with: use e.g. SIGINT, SIGQUIT, SIGTERM`);
  }

  const logLevelText = values['log-level'] ?? env.TEE_INIT_LOG_LEVEL;
  if (logLevelText !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevelText)) {
    throw usageError(`--log-level ${JSON.stringify(logLevelText)} is not one of ${LOG_LEVELS.join('|')}`);
  }

  const configPath = values.config ?? (env.TEE_INIT_CONFIG || undefined);
  const result: CliOptions = {
    subcommand,
    configPath,
    gracePeriodMs,
    stopSignal,
    logLevel: logLevelText as LogLevel | undefined,
    signalGroup: values['signal-group'] ?? truthy('TEE_INIT_SIGNAL_GROUP', env.TEE_INIT_SIGNAL_GROUP),
    subreaper: values.subreaper ?? truthy('TEE_INIT_SUBREAPER', env.TEE_INIT_SUBREAPER),
    expectExit: (values['expect-exit'] ?? []).map((v) => {
      if (!/^\d{1,3}$/.test(v) || Number(v) > 255) throw usageError(`--expect-exit ${JSON.stringify(v)}: write an exit status 0-255 (e.g. -e 143 for a program that ends with SIGTERM's status)`);
      return Number(v);
    }),
    show: values.show === true,
    etc: values.etc,
    command,
  };

  if (subcommand === 'check') {
    if (!configPath) throw usageError('check needs --config FILE (or TEE_INIT_CONFIG)');
  } else if (subcommand === 'run' && (result.show || result.etc !== undefined)) {
    throw usageError(`${result.show ? '--show' : '--etc'} goes with check: tee-init check --config FILE ${result.show ? '--show' : '--etc DIR'}`);
  }
  if (subcommand === 'run' && !configPath && command.length === 0) {
    throw usageError('nothing to run: give a COMMAND or --config FILE (see tee-init --help)');
  }
  return result;
}

/** `shares` and `labels`: tools beside the init, with their own options (no COMMAND). */
function parseTool(tool: 'shares' | 'labels', argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  const base: CliOptions = {
    subcommand: tool, configPath: undefined, gracePeriodMs: undefined, stopSignal: undefined, logLevel: undefined,
    signalGroup: false, subreaper: false, expectExit: [], show: false, etc: undefined, command: [],
  };
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: [...argv], options: { ...TOOL_OPTIONS[tool], help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    values = parsed.values as Record<string, string | boolean | undefined>;
    positionals = parsed.positionals;
  } catch (err) {
    throw usageError(`${tool}: ${(err as Error).message.split('\n')[0]} (see tee-init --help)`);
  }
  if (values.help) return { ...base, subcommand: 'help' };
  if (tool === 'labels') {
    if (positionals.length > 0) throw usageError(`labels takes no arguments, found ${JSON.stringify(positionals[0])}: tee-init labels --config FILE`);
    const configPath = (values.config as string | undefined) ?? (env.TEE_INIT_CONFIG || undefined);
    if (!configPath) throw usageError('labels needs --config FILE (or TEE_INIT_CONFIG)');
    return { ...base, configPath };
  }
  const action = positionals[0];
  if ((action !== 'split' && action !== 'combine') || positionals.length > 1) {
    throw usageError(`shares: write \`tee-init shares split --threshold T --shares N\` or \`tee-init shares combine\`, found ${JSON.stringify(positionals.join(' '))}`);
  }
  const count = (name: 'threshold' | 'shares'): number | undefined => {
    const text = values[name] as string | undefined;
    if (text === undefined) return undefined;
    if (!/^\d{1,3}$/.test(text) || Number(text) < 2 || Number(text) > 255) throw usageError(`shares ${action}: --${name} ${JSON.stringify(text)} must be a whole number from 2 to 255`);
    return Number(text);
  };
  const o: SharesOptions = {
    action,
    threshold: count('threshold'),
    shares: count('shares'),
    random: values.random === true,
    verify: values.verify as string | undefined,
    salt: values.salt as string | undefined,
    info: values.info as string | undefined,
  };
  const misplaced = action === 'split'
    ? (['verify', 'salt', 'info'] as const).find((k) => o[k] !== undefined)
    : (['shares', 'random'] as const).find((k) => (k === 'random' ? o.random : o[k] !== undefined));
  if (misplaced) throw usageError(`shares ${action}: --${misplaced} goes with shares ${action === 'split' ? 'combine' : 'split'}`);
  if (action === 'split') {
    if (o.threshold === undefined || o.shares === undefined) throw usageError('shares split needs --threshold T and --shares N (e.g. --threshold 2 --shares 3)');
    if (o.threshold > o.shares) throw usageError(`shares split: --threshold ${o.threshold} is more than --shares ${o.shares}`);
  }
  if ((o.salt === undefined) !== (o.info === undefined)) throw usageError('shares combine: --salt and --info go together (the identity\'s salt and info)');
  if (o.verify !== undefined && !/^sha256:[0-9a-fA-F]{64}$/.test(o.verify)) throw usageError('shares combine: --verify must be sha256: and 64 hex digits');
  return { ...base, shares: o };
}
