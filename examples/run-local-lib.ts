// What every examples/*/run-local.ts shares: the emulated Confidential Space (test/fakes), the
// example's OWN tee-init.yaml with only the local differences applied (each printed), the real
// bundle booted from it and awaited on its log, and a clean stop. A run-local prints what it
// proves and exits 0, or prints FAILED and one line why and exits 1.
import { execa } from 'execa';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { EXAMPLE_PROJECT_NUMBERS, startWorld, poolMembers, type Collaborator, type EmulatedWorld } from '../test/fakes/world.ts';
import { bundle, node, root, startInit, type LogRecord, type LogTail, type Started } from '../test/helpers/init.ts';
import { createPki, type Pki, type PkiOptions } from '../test/helpers/pki.ts';
import { waitForPort } from '../src/proxy/ready.ts';
import { createLog } from '../src/lib/log.ts';

export type Config = Record<string, any>;

export interface Init {
  name: string;
  proc: Started['proc'];
  log: LogTail;
  /** Resolves with the first log record containing `text`; rejects at once if the init exits first. */
  waitFor(text: string, timeoutMs?: number): Promise<LogRecord>;
  /** Resolves once the program has printed `text` on stdout (a program's own readiness line). */
  printed(text: string, timeoutMs?: number): Promise<void>;
}

export interface Local {
  world: EmulatedWorld;
  /** A fresh directory on /dev/shm for the derived configs, the PKI and the output dirs. */
  dir: string;
  say(line?: string): void;
  /** A throwaway PKI (openssl) in dir/pki. */
  pki(options?: PkiOptions): Pki;
  /**
   * examples/NAME/tee-init.yaml (or another file of the example) with the local differences:
   * the token file, the endpoints and a fresh output dir, then `change` for what only this
   * machine needs. Every difference is printed. Returns the derived config's path.
   */
  config(example: string, change?: (c: Config) => string[], file?: string): string;
  /**
   * Stores one secret per `secrets.X` of the config (source gcp) under its ref, readable by
   * the collaborator the config reads it as (its service account and its pool): `values[X]`
   * is the data, at the version the ref names (earlier versions hold placeholders); `null`
   * stores nothing (that collaborator is down).
   */
  serve(configPath: string, values: Record<string, string | Buffer | null>): void;
  /** A rotation, as a collaborator does it in the console: a new version of each named secret (its new `latest`). */
  rotate(configPath: string, values: Record<string, string | Buffer>): void;
  /** Starts the bundle on a config (extra argv after it, extra environment, another working directory). */
  boot(name: string, configPath: string, options?: { args?: string[]; env?: Record<string, string>; cwd?: string }): Init;
  /** Waits until 127.0.0.1:port accepts (a program without a readiness log line). */
  port(port: number, timeoutMs?: number): Promise<void>;
  /**
   * `tee-init check --config examples/NAME/tee-init.yaml [args]`, as the example's README shows
   * it (the example's own file, nothing derived); returns its output, throws with it on failure.
   */
  check(example: string, args?: string[]): Promise<string>;
  /**
   * Runs an interactive client (openssl s_client): writes `send`, waits until its stdout holds
   * `expect`, then closes it; returns that stdout. Throws with its output if `expect` never comes.
   */
  converse(file: string, args: string[], send: string, expect: string, timeoutMs?: number): Promise<string>;
  /** Runs a real client; returns its stdout (with `all`: stdout and stderr); throws with its output if it fails. */
  run(file: string, args: string[], options?: { env?: Record<string, string>; input?: string; all?: boolean }): Promise<string>;
}

const example = (name: string, file = 'tee-init.yaml') => join(root, 'examples', name, file);

/** Runs `body` against a fresh world; stops every init it booted (SIGTERM, exit 0 expected) and cleans up. */
export async function runLocal(title: string, body: (l: Local) => Promise<string>): Promise<never> {
  const say = (line = '') => console.log(line);
  const world = await startWorld({ projectNumbers: EXAMPLE_PROJECT_NUMBERS });
  const dir = mkdtempSync('/dev/shm/tee-init-example-');
  // Traversable (not listable): the output dirs inside belong to the programs' users.
  chmodSync(dir, 0o711);
  const inits: Init[] = [];
  const outDirs: string[] = [];
  let configs = 0;
  let status = 0;
  const local: Local = {
    world,
    dir,
    say,
    pki: (options) => createPki(join(dir, 'pki'), options),
    config(name, change = () => [], file = 'tee-init.yaml') {
      const c = parse(readFileSync(example(name, file), 'utf8')) as Config;
      const notes: string[] = [];
      c.attestation = { ...c.attestation, tokenFile: world.tokenFile };
      notes.push(`attestation.tokenFile ${world.tokenFile} (signed by the emulated attestation service)`);
      c.endpoints = { ...world.endpoints };
      notes.push(`endpoints             the fakes on ${world.gcp.url}${world.endpoints.teeserver ? ` and ${world.endpoints.teeserver}` : ''}`);
      if (c.output?.dir !== undefined) {
        const out = join(dir, `out-${outDirs.length}`);
        outDirs.push(out);
        notes.push(`output.dir            ${out} (instead of ${c.output.dir}: several runs may share this machine)`);
        c.output = { ...c.output, dir: out };
      }
      if (process.getuid?.() !== 0) {
        // Switching users needs root; as yourself, the programs run as you.
        for (const [field, holder] of [['output.owner', c.output], ['run.user', c.run], ...Object.entries(c.processes ?? {}).map(([n, p]) => [`processes.${n}.user`, p])] as [string, Config | undefined][]) {
          const key = field.endsWith('owner') ? 'owner' : 'user';
          if (holder?.[key] === undefined) continue;
          notes.push(`${field.padEnd(21)} left out (was ${holder[key]}: not root, so the programs run as you)`);
          delete holder[key];
        }
      }
      notes.push(...change(c));
      // One file per call: the same example may boot twice (psk: a server and a client TEE).
      const path = join(dir, `${name}-${file.replace(/\.yaml$/, '')}-${++configs}.json`);
      writeFileSync(path, JSON.stringify(c, null, 2));
      say(`examples/${name}/${file}, booted with these local differences:`);
      for (const n of notes) say(`  ${n}`);
      return path;
    },
    rotate(configPath, values) {
      const c = JSON.parse(readFileSync(configPath, 'utf8')) as Config;
      for (const [name, value] of Object.entries(values)) world.addVersion(String(c.secrets[name].ref).replace(/\/versions\/[^/]+$/, ''), value);
    },
    serve(configPath, values) {
      const c = JSON.parse(readFileSync(configPath, 'utf8')) as Config;
      const byProvider = new Map<string, Collaborator>(Object.values(world.collaborators).map((k) => [k.provider, k]));
      for (const [name, s] of Object.entries<Config>(c.secrets ?? {})) {
        if (s.source !== 'gcp') continue;
        const m = /^(projects\/[^/]+(?:\/locations\/[^/]+)?\/secrets\/[^/]+)\/versions\/([^/]+)$/.exec(s.ref);
        const value = values[name];
        if (value === null) continue;
        if (!m || value === undefined) throw new Error(`run-local: no value for secrets.${name} (${s.ref})`);
        const cred = c.credentials[s.credentials] as Config;
        const who = byProvider.get(cred.provider);
        if (!who) throw new Error(`run-local: credentials.${s.credentials}.provider ${cred.provider} is not a collaborator of the emulated world`);
        if (cred.serviceAccount && !world.gcp.world.serviceAccounts?.[cred.serviceAccount]) world.addServiceAccount(cred.serviceAccount, [poolMembers(who)]);
        const n = /^\d+$/.test(m[2]!) ? Number(m[2]) : 1;
        const versions = Array.from({ length: n }, (_, i) => ({ data: i === n - 1 ? value : `placeholder version ${i + 1}\n` }));
        world.addSecret(m[1]!, versions, { access: [...(cred.serviceAccount ? [cred.serviceAccount] : []), poolMembers(who)] });
      }
    },
    boot(name, configPath, { args = [], env = {}, cwd } = {}) {
      // The programs' output is kept (execa buffers it), not printed: the run-local says what matters.
      const { proc, log } = startInit(['--config', configPath, ...args], { env: { NO_PROXY: '127.0.0.1,localhost', ...env }, ...(cwd ? { cwd } : {}) });
      const exited = proc.then((r) => {
        throw new Error(`${name} init exited (${r.exitCode ?? r.signal}) early:\n${log.text}`);
      });
      exited.catch(() => {});
      let stdout = '';
      const onStdout: (() => void)[] = [];
      proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        for (const f of onStdout) f();
      });
      const init: Init = {
        name,
        proc,
        log,
        waitFor: (text, timeoutMs = 30_000) => Promise.race([log.waitFor(text, timeoutMs), exited]),
        printed: (text, timeoutMs = 30_000) =>
          Promise.race([
            exited,
            new Promise<void>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error(`${name}: the program did not print "${text}" within ${timeoutMs} ms`)), timeoutMs);
              const check = () => stdout.includes(text) && (clearTimeout(timer), resolve());
              onStdout.push(check);
              check();
            }),
          ]),
      };
      inits.push(init);
      return init;
    },
    async check(name, args = []) {
      const r = await execa(node, ['--disable-sigusr1', bundle, 'check', '--config', `examples/${name}/tee-init.yaml`, ...args], { cwd: root, reject: false, all: true });
      if (r.exitCode !== 0) throw new Error(`tee-init check of examples/${name} failed (${r.exitCode}):\n${String(r.all)}`);
      return String(r.stdout);
    },
    async converse(file, args, send, expect, timeoutMs = 20_000) {
      const p = execa(file, args, { reject: false, stdin: 'pipe', all: true });
      let out = '';
      p.stdout.setEncoding('utf8');
      const answered = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        p.stdout.on('data', (c: string) => (out += c).includes(expect) && (clearTimeout(timer), resolve(true)));
        void p.then(() => (clearTimeout(timer), resolve(out.includes(expect))));
      });
      p.stdin.write(send);
      const ok = await answered;
      p.kill('SIGTERM');
      const r = await p;
      if (!ok) throw new Error(`${file} ${args.join(' ')}: no "${expect}" in its answer (${r.exitCode ?? r.signal}): ${String(r.all).trim()}`);
      return out.trim();
    },
    port: (port, timeoutMs = 20_000) => waitForPort({ host: '127.0.0.1', port }, createLog({ level: 'error' }), { timeoutMs }),
    async run(file, args, options = {}) {
      const r = await execa(file, args, { reject: false, timeout: 20_000, all: true, env: options.env, ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }) });
      if (r.exitCode !== 0 || r.timedOut) throw new Error(`${file} ${args.join(' ')} failed (${r.exitCode ?? 'timeout'}): ${String(r.stderr).trim() || String(r.stdout).trim()}`);
      return String(options.all ? r.all : r.stdout).trim();
    },
  };
  try {
    say(`${title}\n`);
    const proved = await body(local);
    for (const init of inits.reverse()) {
      init.proc.kill('SIGTERM');
      const r = await init.proc;
      if (r.exitCode !== 0) throw new Error(`${init.name} init exited with ${r.exitCode ?? r.signal} after SIGTERM:\n${init.log.text}`);
    }
    const left = outDirs.filter((d) => existsSync(d));
    if (left.length > 0) throw new Error(`left behind after the stop: ${left.join(', ')}`);
    say(`\nOK: ${proved}`);
  } catch (err) {
    console.error(`\nFAILED: ${(err as Error).message}`);
    status = 1;
  } finally {
    // After a failure: SIGTERM, which the init forwards to its programs; SIGKILL only if it hangs
    // (a SIGKILLed init leaves its programs running, holding its output pipes open).
    await Promise.all(inits.map(async (init) => {
      init.proc.kill('SIGTERM');
      const timer = setTimeout(() => init.proc.kill('SIGKILL'), 15_000);
      await init.proc;
      clearTimeout(timer);
    }));
    await world.close();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(status);
}
