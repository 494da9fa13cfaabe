// Readiness checks that need no cooperation from the program (reference/processes.md): a TCP
// port or unix socket accepting, a file appearing, a command exiting 0, an HTTP 2xx. One attempt
// per kind in the table below; waitReady() polls under an overall timeout.
import { existsSync } from 'node:fs';
import { connect, type NetConnectOpts } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Commands } from './command.ts';
import type { ReadyCheck, ReadySpec } from './types.ts';

/** What an attempt may use: the unit's commands (exec, as the program), an abort. */
export interface ProbeContext {
  commands: Commands;
  signal: AbortSignal;
  /** One attempt's own limit. */
  attemptMs: number;
}

type Attempt<S> = (spec: S, ctx: ProbeContext) => Promise<string | undefined>;

/** An attempt resolves undefined when ready, or a short reason why not. */
const connects = (opts: NetConnectOpts, ctx: ProbeContext): Promise<string | undefined> =>
  new Promise((resolve) => {
    const socket = connect(opts);
    const done = (why?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done('connect timed out'), ctx.attemptMs);
    socket.once('connect', () => done());
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });

const ATTEMPTS: { [K in keyof UnionToRecord]: Attempt<UnionToRecord[K]> } = {
  tcp: ({ tcp }, ctx) => {
    const i = tcp.lastIndexOf(':');
    return connects({ host: tcp.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(tcp.slice(i + 1)) }, ctx);
  },
  unix: ({ unix }, ctx) => connects({ path: unix }, ctx),
  file: async ({ file }) => (existsSync(file) ? undefined : 'no such file yet'),
  exec: ({ exec }, ctx) => ctx.commands.run(exec, ctx.attemptMs, ctx.signal),
  // The status line is the answer: the body is never read (a program streaming one forever would
  // hold the connection), and the attempt has a hard limit, not just an idle one (headers
  // trickled a byte at a time).
  http: ({ http }, ctx) =>
    new Promise((resolve) => {
      const done = (why?: string) => {
        clearTimeout(timer);
        req.destroy();
        resolve(why);
      };
      // Loaded here, not imported: node:http costs ~5 ms of the plain init's start, which never asks.
      const req = process.getBuiltinModule('node:http').request(http, { method: 'GET' }, (res) => {
        const code = res.statusCode ?? 0;
        done(code >= 200 && code < 300 ? undefined : `HTTP ${code}`);
      });
      const timer = setTimeout(() => done('timed out'), ctx.attemptMs);
      req.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
      req.end();
    }),
};

type UnionToRecord = {
  tcp: Extract<ReadySpec, { tcp: string }>;
  unix: Extract<ReadySpec, { unix: string }>;
  file: Extract<ReadySpec, { file: string }>;
  exec: Extract<ReadySpec, { exec: readonly string[] }>;
  http: Extract<ReadySpec, { http: string }>;
};

export function kindOf(spec: ReadySpec): keyof UnionToRecord {
  return Object.keys(spec)[0] as keyof UnionToRecord;
}

/** "tcp 127.0.0.1:7777", "exec pg_isready -h /run/x", for messages. */
export function describeReady(spec: ReadySpec): string {
  const kind = kindOf(spec);
  const value = (spec as Record<string, unknown>)[kind];
  return `${kind} ${Array.isArray(value) ? value.join(' ') : String(value)}`;
}

/**
 * Polls until the check passes: resolves undefined. The pause between attempts starts short
 * and doubles up to the configured interval. At the timeout, resolves the last reason.
 * Rejects with signal.reason when aborted (the unit exited, the init is stopping).
 */
export async function waitReady(check: ReadyCheck, ctx: Omit<ProbeContext, 'attemptMs'>): Promise<string | undefined> {
  const kind = kindOf(check.spec);
  const attempt = ATTEMPTS[kind] as Attempt<ReadySpec>;
  const deadline = performance.now() + check.timeoutMs;
  let last: string | undefined;
  let attempts = 0;
  for (;;) {
    ctx.signal.throwIfAborted();
    const left = deadline - performance.now();
    last = await attempt(check.spec, { ...ctx, attemptMs: Math.max(1, Math.min(left, 5_000)) });
    ctx.signal.throwIfAborted();
    if (last === undefined) return undefined;
    // A program that is nearly up should not cost a whole interval: 5 ms, 10, 20, ... up to it.
    const pause = Math.min(check.intervalMs, 5 * 2 ** attempts++);
    if (performance.now() + pause > deadline) return last;
    await sleep(pause, undefined, { signal: ctx.signal });
  }
}
