// The plan (docs/design.md, "Plan, then boot"): everything a boot decides before it contacts
// anyone — the users, the output directory, every secret's path, every program rendered (argv,
// env with what the listeners add, files, readiness, reload), the listeners, the ports they
// bind, the rotation — and every check a boot makes before its first network call. `tee-init
// check` prints it; the boot (src/pipeline.ts) executes it. One function, so the two can never
// disagree: a problem here is a problem in both, with the same first line, and check shows all
// of them at once.
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { withoutInitSettings } from '../lib/env.ts';
import { InitError } from '../lib/errors.ts';
import { configProblems, loadConfig } from '../config/load.ts';
import { commandProblem, programProblem, runIdentities, runWithCommand, type RunIdentities } from '../config/local.ts';
import type { Config } from '../config/schema.ts';
import { type ConfiguredListener, configuredListeners } from '../config/schema-listeners.ts';
import { checkUnits, type HealthConfig } from '../config/schema-run.ts';
import { configError } from '../lib/errors.ts';
import { FRESH_PARENT, freshDirName, outputDirProblem } from '../materialize/output-dir.ts';
import { parseHostPort } from '../lib/address.ts';
import { render, requiredSecrets, type Rendered, type RenderedFile, type RenderInput, type SecretRef } from '../render/index.ts';
import type { Scope } from '../render/placeholders.ts';
import { presetReady, reloadOf, renderUnits, secretsUsed, type ProcessPlan } from '../run/render-units.ts';
import { checkSecretFile } from '../secrets/sources/file.ts';
import type { ChildSpec } from '../supervise/child.ts';
import type { UserIds } from '../lib/users.ts';
import { portProblems, type Port } from './ports.ts';

export interface PlanInput {
  configPath: string;
  /** COMMAND from the command line: replaces run.command when not empty. */
  command: readonly string[];
  /**
   * The environment the programs inherit, tee-init's own settings taken out. The boot passes
   * its own; check passes none, so that --show prints exactly what the config adds.
   */
  env: NodeJS.ProcessEnv;
  /** Where passwd and group live (check --etc: the image's). */
  etc?: string | undefined;
  /**
   * The fresh output directory when output.dir is unset. The boot lets plan() choose a random
   * name (and creates exactly that one); check shows a placeholder.
   */
  freshDir?: string | undefined;
}

export interface Plan {
  path: string;
  config: Config;
  ids: RunIdentities;
  output: {
    /** Where the files go: output.dir, or the fresh directory chosen now. */
    path: string;
    /** output.dir is unset: the boot creates `path` itself, exclusively. */
    fresh: boolean;
    /** Something is written there (secret files, rendered files, a preset): the boot creates it. */
    needed: boolean;
  };
  /** Each configured secret's future path (absent: kept in memory). */
  secretRefs: Record<string, SecretRef>;
  /** What the programs read, by name, for the "not referenced" note. */
  referenced: string[];
  /** Every program, in start order: run: as the one unit `run`, or processes:. */
  units: ProcessPlan[];
  /** processes: with listeners among them, in start order; undefined for run:. */
  order: string[] | undefined;
  /** run: as rendered (absent with processes:). */
  run: { input: RenderInput; rendered: Rendered } | undefined;
  /** Every rendered file, names unique. */
  files: RenderedFile[];
  listeners: ConfiguredListener[];
  /** What the listeners add to every program's environment (env: true). */
  listenerEnv: Record<string, string>;
  health: HealthConfig | undefined;
  /** Addresses the boot binds, found free when the plan was made. */
  ports: Port[];
  /** Not errors: what may go wrong on another machine (a program not found here). */
  warnings: string[];
}

/** Check's placeholder for the fresh directory a boot would create. */
export const PLACEHOLDER_DIR = `${FRESH_PARENT}/tee-init-XXXXXX`;

/**
 * Makes the plan, or throws one InitError carrying every problem (the first one's exit status
 * and text lead; problemsOf() lists them all, each prefixed with the config file).
 */
export async function plan(input: PlanInput): Promise<Plan> {
  const { config, path } = loadConfig(input.configPath);
  const problems: InitError[] = [];
  const attempt = <T>(check: () => T): T | undefined => {
    try {
      return check();
    } catch (err) {
      if (!(err instanceof InitError)) throw err;
      problems.push(err);
      return undefined;
    }
  };
  const problem = (message: string) => problems.push(configError(message));

  // A file secret the boot could not read (exists, regular, readable, size).
  for (const [name, s] of Object.entries(config.secrets)) if (s.source === 'file') attempt(() => checkSecretFile(name, s.path));
  if (input.etc !== undefined && !existsSync(join(input.etc, 'passwd'))) problem(`--etc ${input.etc}: there is no passwd file in it: give the image's /etc directory`);
  const ids = runIdentities(config, input.etc, attempt);
  const order = checkUnits(config, path);
  if (order && input.command.length > 0) problem(`COMMAND was given on the command line, but the config runs processes: (${order.join(', ')}); give the commands there`);

  const fresh = config.output.dir === undefined;
  const dir = config.output.dir ?? input.freshDir ?? freshDirName();
  const needed = needsOutputDir(config);
  if (needed) {
    const why = outputDirProblem({ dir: config.output.dir, allowNonTmpfs: config.output.allowNonTmpfs, owner: ids.owner });
    if (why) problems.push(why);
  }
  const secretRefs: Record<string, SecretRef> = Object.fromEntries(Object.entries(config.secrets).map(([n, s]) => [n, { path: s.file ? join(dir, s.file) : undefined }]));
  const listeners = configuredListeners(config);
  const listenerEnv = attempt(() => envFromListeners(listeners)) ?? {};
  const outputDir = needed ? dir : '';

  let units: ProcessPlan[] = [];
  let files: RenderedFile[] = [];
  let run: Plan['run'];
  // What each program gets beyond the inherited environment (execve's limits are checked on it).
  const added = new Map<string, Record<string, string>>();
  if (config.processes && order) {
    const done = attempt(() => renderUnits({
      processes: config.processes!,
      order,
      secrets: secretRefs,
      outputDir,
      childOf: (name, env) => {
        const u = ids.processUsers.get(name);
        added.set(name, { ...listenerEnv, ...env });
        return { env: childEnv(input.env, { ...listenerEnv, ...env }, u), uid: u?.uid, gid: u?.gid, cwd: config.processes?.[name]?.workingDir };
      },
    }));
    if (done) ({ plans: units, files } = done);
    for (const u of units) {
      const why = commandProblem(u.child.argv, added.get(u.name) ?? {}, `processes.${u.name}`);
      if (why) problem(why);
    }
  } else {
    const runSpec = attempt(() => runWithCommand(config, input.command));
    const renderInput: RenderInput | undefined = runSpec && { run: runSpec, secrets: secretRefs, outputDir };
    const rendered = renderInput && attempt(() => render(renderInput));
    if (renderInput && rendered) {
      const child: ChildSpec = { argv: rendered.argv, env: childEnv(input.env, { ...listenerEnv, ...rendered.env }, ids.user), uid: ids.user?.uid, gid: ids.user?.gid, cwd: config.run.workingDir };
      const unit = attempt(() => runAsUnit(config, rendered, child, { secrets: secretRefs, outputDir, with: runSpec!.with ?? {} }, secretRefs));
      if (unit) units = [unit];
      files = rendered.files;
      run = { input: renderInput, rendered };
      const why = commandProblem(rendered.argv, { ...listenerEnv, ...rendered.env }, 'run');
      if (why) problem(why);
    }
  }
  for (const u of units) {
    const why = refusesRoot(u, config) ?? workingDirProblem(u, outputDir);
    if (why) problem(why);
  }
  const ports = addresses(config, listeners);
  for (const why of await portProblems(ports)) problem(why);

  if (problems.length > 0) throw planProblems(path, problems);

  const warnings: string[] = [];
  const here = input.etc ? ' (the image may have it: this checks this machine)' : '';
  for (const u of units) {
    const file = u.child.argv[0];
    const field = u.single ? (config.run.preset === 'none' ? 'run.command' : `run.preset ${config.run.preset}`) : `processes.${u.name}.command`;
    const why = file && programProblem(file, process.env.PATH, u.single ? ids.user : ids.processUsers.get(u.name), field);
    if (why) warnings.push(`${why}${here}`);
  }
  // What the programs name (a preset's secrets, path placeholders): for the "not referenced" note.
  const specs = config.processes ? Object.values(config.processes) : [run!.input.run];
  const referenced = [...new Set(specs.flatMap((p) => requiredSecrets({ preset: p.preset, with: p.with, command: p.command, env: p.env, files: p.files })))];
  return {
    path, config, ids, output: { path: dir, fresh, needed }, secretRefs, referenced, units, order, run, files,
    listeners, listenerEnv, health: config.health, ports, warnings,
  };
}

/** One InitError for them all: the first leads (its status, its text), problemsOf() lists each. */
function planProblems(path: string, problems: readonly InitError[]): InitError {
  const prefix = `config ${path}: `; // some checks (start order) name the file already
  return configProblems(path, problems.map((p) => (p.message.startsWith(prefix) ? p.message.slice(prefix.length) : p.message)), problems[0]);
}

function needsOutputDir(config: Config): boolean {
  const runs = config.processes ? Object.values(config.processes) : [config.run];
  // Processes share the directory (a data dir, a socket, a ready file): a reference is a need.
  const referenced = config.processes !== undefined && /\{\{[ \t]*output\.dir[ \t]*\}\}/.test(JSON.stringify(config.processes));
  return referenced || Object.values(config.secrets).some((s) => s.file !== undefined) || runs.some((r) => r.files.length > 0 || r.preset !== 'none');
}

/**
 * What listeners add to the programs' environment (HTTP_PROXY for an egress proxy,
 * GCE_METADATA_HOST for the metadata server), from their configured addresses: a listener
 * that sets variables needs a fixed port, since the program is told before it binds.
 */
function envFromListeners(listeners: readonly ConfiguredListener[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const l of listeners) {
    if (!l.type.childEnv || typeof l.config.listen !== 'string') continue;
    const address = parseHostPort(l.config.listen, `${l.field}.listen`, true);
    const vars = l.type.childEnv(l.config, address);
    if (Object.keys(vars).length === 0) continue;
    if (address.port === 0) throw configError(`${l.field}.listen: port 0 (any free port) cannot go in the program's environment (env:); choose a fixed loopback port`);
    Object.assign(env, vars);
  }
  return env;
}

/** The addresses the boot will bind with a fixed port: the health endpoint and each listener. */
function addresses(config: Config, listeners: readonly ConfiguredListener[]): Port[] {
  const out: Port[] = [];
  const add = (field: string, listen: string) => {
    const { host, port } = parseHostPort(listen, field, true);
    if (port !== 0) out.push({ field, host, port });
  };
  if (config.health) add('health.listen', config.health.listen);
  for (const l of listeners) if (typeof l.config.listen === 'string') add(`${l.field}.listen`, l.config.listen);
  return out;
}

/** PostgreSQL's programs refuse to run as root ("cannot be run as root"): say so before the boot. */
const ROOT_REFUSERS = new Set(['postgres', 'initdb', 'pg_ctl', 'postmaster']);
function refusesRoot(unit: ProcessPlan, config: Config): string | undefined {
  if (unit.child.uid !== undefined || process.geteuid?.() !== 0) return undefined;
  const preset = unit.single ? config.run.preset : config.processes?.[unit.name]?.preset;
  const program = basename(unit.child.argv[0] ?? '');
  if (preset !== 'postgres' && !ROOT_REFUSERS.has(program)) return undefined;
  const field = unit.single ? 'run.user' : `processes.${unit.name}.user`;
  return `${field}: not set, and tee-init runs as root: ${program} refuses to run as root; set ${field}: postgres (the image's PostgreSQL user)`;
}

/**
 * A working directory the program cannot start in (the spawn would fail with 78). One under
 * the output directory may be made by an earlier process (initdb's data dir): not judged here.
 */
function workingDirProblem(unit: ProcessPlan, outputDir: string): string | undefined {
  const cwd = unit.child.cwd;
  if (cwd === undefined || (outputDir !== '' && (cwd === outputDir || cwd.startsWith(`${outputDir}/`)))) return undefined;
  let isDir = false;
  try {
    isDir = statSync(cwd).isDirectory();
  } catch {}
  if (isDir) return undefined;
  const field = unit.single ? 'run.workingDir' : `processes.${unit.name}.workingDir`;
  return `${field}: ${cwd} does not exist or is not a directory: create it in the image, or start in a directory that exists`;
}

/** run: as the one process unit of the run stage, supervised as tini does (`single`). */
function runAsUnit(config: Config, rendered: Rendered, child: ChildSpec, scope: Scope, secretRefs: Record<string, SecretRef>): ProcessPlan {
  return {
    kind: 'process',
    name: 'run',
    field: 'run',
    single: true,
    after: [],
    child,
    // Rotation starts once it is ready: a preset's check (redis: its admin socket) counts.
    ready: presetReady(rendered),
    oneshot: false,
    restart: { policy: 'never', max: 0, backoff: { initialMs: 0, maxMs: 0 } },
    stopSignal: config.run.stopSignal ?? rendered.stopSignal,
    gracePeriodMs: config.run.gracePeriod,
    signals: config.run.signals && new Set(config.run.signals),
    reload: reloadOf('run.reload', config.run.reload, rendered, scope),
    secrets: secretsUsed(rendered, secretRefs),
  };
}

/**
 * The child's environment: the init's own (minus tee-init's settings, which are ours), what the
 * listeners and the render add, and HOME/USER/LOGNAME of the user it switches to.
 */
function childEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>, user: UserIds | undefined): NodeJS.ProcessEnv {
  const env = withoutInitSettings(base);
  if (user?.name) Object.assign(env, { USER: user.name, LOGNAME: user.name, ...(user.home ? { HOME: user.home } : {}) });
  return Object.assign(env, extra);
}

