// The fault-injection rig: one init (the real bundle) on the fake Google world with every
// listener type in one config, fronting and called by the hostile program (hostile-program.mjs),
// plus a normal request per listener (the probes) to tell whether a listener still serves.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { LISTENER_TYPES } from '../../src/proxy/types/index.ts';
import { SHARE_A, SHARE_B, type Boot } from '../helpers/boot.ts';
import { node, type LogRecord, type Started, startInit } from '../helpers/init.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, issue, leaf, type KeyPair, type Pki } from '../helpers/pki.ts';
import { dial } from './fuzz.ts';

export const PSK_KEY = Buffer.from(createHash('sha256').update(SHARE_A + SHARE_B).digest('hex'), 'hex');
export const HOSTILE_HOST = 'hostile.test';
const PROGRAM = join(import.meta.dirname, 'hostile-program.mjs');

/** Listener names in the config, and what each is. */
export const LISTENERS = ['psk', 'mtls-http', 'mtls-any', 'tunnel-in', 'tunnel-out', 'tunnel-hostile', 'egress', 'metadata'] as const;
export type ListenerName = (typeof LISTENERS)[number];

/** Sizes of the barrage: small limits, so that a flood reaches them quickly. */
export const LIMITS = { maxConnections: 16, tunnelConnections: 8, metadataConnections: 256, handshakeTimeoutMs: 3000, tunnelIdleMs: 4000 };

export interface Ports {
  listeners: Record<ListenerName, number>;
  /** The program's raw TCP ports: psk, permissive tls, tunnel server, egress CONNECT target. */
  raw: [number, number, number, number];
  http: number;
  https: number;
  h2: number;
  control: number;
  health: number;
}

/** Client certificates a peer can bring, signed by the listeners' CA. */
export interface Certs {
  pki: Pki;
  hostile: KeyPair;
  /** name -> certificate whose subject/SANs are hostile; `allowed` ones carry a URI SAN the allow-list admits. */
  weird: Record<string, KeyPair & { allowed: boolean }>;
}

function weirdCerts(pki: Pki): Certs['weird'] {
  const dir = join(pki.dir, 'weird');
  const ctl = '\x01\x7f';
  const specs: Record<string, { cn: string; sans: string[]; allowed: boolean }> = {
    'utf8-subject': { cn: 'Ünïcødé 日本 🙂/O=Ærø', sans: ['URI:spiffe://tee-init.test/utf8', 'DNS:xn--wgv71a.test'], allowed: true },
    'ctl-subject': { cn: `ctl${ctl}\x1b[31mred/OU=quote\\"\\,\\;\\=\\+x`, sans: ['URI:spiffe://tee-init.test/ctl'], allowed: true },
    'cr-subject': { cn: 'line\rX-Injected: 1', sans: ['URI:spiffe://tee-init.test/crlf'], allowed: true },
    'utf8-sans': { cn: 'sans', sans: [`URI:spiffe://tee-init.test/é${ctl}`, `DNS:evil${ctl}.test`, 'DNS:日本.test', 'email:a@b'], allowed: true },
    'cr-san': { cn: 'cr san', sans: ['URI:spiffe://tee-init.test/a\rX-Evil: 1'], allowed: true },
    'refused-utf8': { cn: 'Ünïcødé refused 🙂', sans: [`URI:spiffe://elsewhere/é${ctl}`, 'DNS:日本.test'], allowed: false },
    'refused-ctl': { cn: `refused${ctl}\r`, sans: [`DNS:evil${ctl}.test`], allowed: false },
  };
  const out: Certs['weird'] = {};
  for (const [name, s] of Object.entries(specs)) {
    out[name] = { ...issueUtf8(dir, pki.ca, name, s.cn, leaf('clientAuth', s.sans)), allowed: s.allowed };
  }
  return out;
}

/** issue() with `-utf8`: openssl otherwise reads the subject's bytes as Latin-1 and mangles them. */
function issueUtf8(dir: string, ca: KeyPair, name: string, cn: string, extensions: string[]): KeyPair {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  execFileSync('openssl', ['req', '-x509', '-utf8', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', pair.key, '-out', pair.cert, '-subj', `/CN=${cn}`, '-CA', ca.cert, '-CAkey', ca.key, ...extensions.flatMap((e) => ['-addext', e])],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  return pair;
}

export async function setupCerts(dir: string): Promise<Certs> {
  const pki = createPki(join(dir, 'pki'), { serverSans: ['DNS:localhost', 'IP:127.0.0.1', `DNS:${HOSTILE_HOST}`] });
  const hostile = issue(pki.dir, pki.ca, 'hostile', HOSTILE_HOST, leaf('serverAuth', [`DNS:${HOSTILE_HOST}`]));
  return { pki, hostile, weird: weirdCerts(pki) };
}

/** Ports handed out in this process: freePort() alone can give two matrices the same one. */
const handedOut = new Set<number>();

export async function allocatePorts(): Promise<Ports> {
  const p = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!handedOut.has(port)) return handedOut.add(port), port;
    }
  };
  const listeners = {} as Record<ListenerName, number>;
  for (const l of LISTENERS) listeners[l] = await p();
  return { listeners, raw: [await p(), await p(), await p(), await p()], http: await p(), https: await p(), h2: await p(), control: await p(), health: await p() };
}

/** `workers: N` on each listener whose type takes it (types without it run in the init's thread). */
function withWorkers(config: Record<string, unknown>, workers: number, notes: string[]): Record<string, unknown> {
  const type = LISTENER_TYPES[config.type as string]!;
  const candidate = { ...config, workers };
  if (type.schema.safeParse(candidate).success) return candidate;
  notes.push(`${String(config.type)}${config.mode ? ` (${String(config.mode)})` : ''} has no workers: field on this branch; it runs in the init's thread`);
  return config;
}

export function faultConfig(b: Boot, certs: Certs, ports: Ports, workers: number, notes: string[]): Record<string, unknown> {
  const L = ports.listeners;
  const at = (port: number) => `127.0.0.1:${port}`;
  const { maxConnections, handshakeTimeoutMs } = LIMITS;
  const hs = `${handshakeTimeoutMs}ms`;
  const tls = { cert: 'cert', key: 'key', ca: 'ca' };
  const listeners: Record<ListenerName, Record<string, unknown>> = {
    psk: { type: 'psk', mode: 'server', listen: at(L.psk), connect: at(ports.raw[0]), identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } }, handshakeTimeout: hs, maxConnections },
    'mtls-http': {
      type: 'tls', mode: 'strict', listen: at(L['mtls-http']), connect: at(ports.http), tls, http: { xfcc: 'sanitize-set', clientCert: true },
      clients: [{ uri: { prefix: 'spiffe://tee-init.test/' } }], handshakeTimeout: hs, connectTimeout: '3s', idleTimeout: '10s', maxConnections,
    },
    'mtls-any': { type: 'tls', mode: 'permissive', listen: at(L['mtls-any']), connect: at(ports.raw[1]), tls, handshakeTimeout: hs, maxConnections },
    'tunnel-in': {
      type: 'tunnel', mode: 'server', listen: at(L['tunnel-in']), connect: at(ports.raw[2]), h2c: true, inner: { tls },
      maxConnections: LIMITS.tunnelConnections, maxStreams: 50, handshakeTimeout: hs, connectTimeout: '3s', idleTimeout: `${LIMITS.tunnelIdleMs}ms`,
    },
    'tunnel-out': {
      type: 'tunnel', mode: 'client', listen: at(L['tunnel-out']), url: `http://127.0.0.1:${L['tunnel-in']}/`,
      inner: { tls: { cert: 'client_cert', key: 'client_key', ca: 'ca', serverName: 'localhost' } }, maxConnections, connectTimeout: '3s', handshakeTimeout: hs,
    },
    'tunnel-hostile': { type: 'tunnel', mode: 'client', listen: at(L['tunnel-hostile']), url: `http://127.0.0.1:${ports.h2}/`, maxConnections, connectTimeout: '3s' },
    egress: {
      type: 'http-proxy', listen: at(L.egress), routes: [{ hosts: [HOSTILE_HOST], ca: 'ca', address: at(ports.https) }],
      tunnels: [at(ports.raw[3])], maxConnections, connectTimeout: '3s', idleTimeout: '3s',
    },
    metadata: { type: 'metadata', listen: at(L.metadata), credentials: 'alice' },
  };
  const programPorts = join(b.dir, `program-ports-${workers}.json`);
  writeFileSync(programPorts, JSON.stringify({ ...ports, cert: certs.hostile.cert, key: certs.hostile.key }));
  const base = b.config();
  return {
    ...base,
    log: { level: 'info' },
    output: { dir: join(b.dir, `out-workers-${workers}`) },
    // Short: the metadata server's token mints retry until this deadline when Google fails.
    fetch: { deadline: '2s', attemptTimeout: '1s', backoff: { initial: '50ms', max: '500ms' } },
    secrets: {
      ...(base.secrets as object),
      client_cert: { source: 'file', path: certs.pki.client.cert },
      client_key: { source: 'file', path: certs.pki.client.key },
    },
    run: { command: [node, PROGRAM, programPorts] },
    health: { listen: at(ports.health) },
    listeners: Object.fromEntries(Object.entries(listeners).map(([n, c]) => [n, withWorkers(c, workers, notes)])),
  };
}

// ---- the init under test -----------------------------------------------------------------------

export interface InitRun extends Started {
  /** The program's pid, from the init's `child started` line. */
  childPid: number;
  /** Set once the process has exited. */
  exit?: { code: number | undefined; signal: string | undefined };
}

export async function startRun(b: Boot, config: Record<string, unknown>): Promise<InitRun> {
  // No execa timeout (its default here is 60 s, then SIGTERM): the test ends the init itself.
  const started = startInit(['--config', b.writeConfig(config)], { env: { NO_PROXY: '127.0.0.1,localhost' }, timeout: 0 });
  const run = started as InitRun;
  void started.proc.then((r) => (run.exit = { code: r.exitCode, signal: r.signal }));
  const exited = started.proc.then((r) => Promise.reject(new Error(`the init exited with code ${r.exitCode} before its listeners opened:\n${lastLines(started)}`)));
  exited.catch(() => {});
  const child = await Promise.race([started.log.waitFor('child started', 30_000), exited]);
  run.childPid = child.pid as number;
  // Every listener says it listens (or serves from its workers) once bound.
  await Promise.race([exited, Promise.all(LISTENERS.map((name) => started.log.waitFor((r: LogRecord) => r.listener === name && /listening|serving from worker/.test(r.message), 30_000)))]);
  return run;
}

/**
 * Ends a run: SIGTERM (the init stops the program), then, if the init is gone but the program
 * is not (a SIGKILLed init orphans it, and its stderr would hold the pipe open), the program.
 */
export async function stopRun(run: InitRun, waitMs = 20_000): Promise<void> {
  if (!run.exit) run.proc.kill('SIGTERM');
  const ended = await Promise.race([run.proc.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), waitMs).unref())]);
  if (!ended) run.proc.kill('SIGKILL');
  try {
    process.kill(run.childPid, 'SIGKILL');
  } catch {
    // already gone: the usual case
  }
  await run.proc;
}

/** The last `n` lines of the init's log (stderr), for a failure message. */
export function lastLines(run: Started, n = 25, from = 0): string {
  return run.log.lines.slice(Math.max(from, run.log.lines.length - n)).map((l) => `    ${l.length > 600 ? `${l.slice(0, 600)}…` : l}`).join('\n');
}

/** Lines since `mark` that say the init failed: an internal error, a dead worker, or a line that is no JSON (a broken log). */
export function badLines(run: Started, mark: number): string[] {
  return run.log.lines.slice(mark).filter((l) => {
    if (/internal error|worker thread ended unexpectedly|unexpected failure/i.test(l)) return true;
    try {
      JSON.parse(l);
      return false;
    } catch {
      return true;
    }
  });
}

/** The init's own bug handler fired: it stops the program and exits 70 (src/main.ts onInternalError). */
export function fatal(line: string): boolean {
  try {
    const r = JSON.parse(line) as LogRecord;
    return r.exitCode === 70 || (r.severity === 'ERROR' && r.message.startsWith('internal error'));
  } catch {
    return false;
  }
}

// ---- normal requests: does a listener still serve? ---------------------------------------------

const PROBE_MS = 5_000;

function deadline<T>(p: Promise<T>, what: string, ms = PROBE_MS): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** Writes `PING <nonce>` on a duplex that ends at the program's echo, and wants it back. */
async function echoes(s: Duplex, what: string): Promise<void> {
  const nonce = `PING ${Math.random().toString(36).slice(2)}\n`;
  let got = '';
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes(nonce)) resolve();
    });
    s.on('close', () => reject(new Error(`${what}: closed before the echo came back (got ${JSON.stringify(got.slice(0, 200))})`)));
    s.on('error', (err) => reject(new Error(`${what}: ${err.message}`)));
  });
  s.write(nonce);
  try {
    await deadline(done, what);
  } finally {
    s.destroy();
  }
}

async function tlsTo(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  const s = tlsConnect({ host: '127.0.0.1', port, ...options });
  await deadline(new Promise<void>((resolve, reject) => {
    s.once('secureConnect', resolve);
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed during the handshake')));
  }), 'TLS handshake');
  return s;
}

export function pskOptions(key = PSK_KEY): ConnectionOptions {
  return { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256', pskCallback: () => ({ psk: key, identity: 'Client1' }), checkServerIdentity: () => undefined };
}

export function mtlsOptions(certs: Certs, pair: KeyPair = certs.pki.client): ConnectionOptions {
  return { ca: readFileSync(certs.pki.ca.cert), cert: readFileSync(pair.cert), key: readFileSync(pair.key), servername: 'localhost' };
}

/** GET over the tls http listener; resolves with status, headers and body. */
export function httpsGet(port: number, path: string, tls: ConnectionOptions): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return deadline(new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, agent: false, ...tls }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), `GET ${path}`);
}

/** A plain HTTP/1.1 GET (absolute form for the egress proxy). */
export function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return deadline(new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  }), `GET ${path}`);
}

/** Opens one POST tunnel straight on an h2c tunnel server, with the inner mutual TLS; returns the inner socket. */
export async function tunnelStream(port: number, certs: Certs, pair: KeyPair = certs.pki.client): Promise<{ inner: TLSSocket; close(): void }> {
  const session = h2connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  const close = () => session.destroy();
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/' }, { endStream: false });
    stream.on('error', () => {});
    // A refused connection ends the session (and the stream) without a 'response' or a stream 'error'.
    const ended = new Promise<never>((_, reject) => {
      const gone = (why: string) => () => reject(new Error(`the tunnel ${why} before a response`));
      stream.once('close', gone('stream closed'));
      session.once('close', gone('connection closed'));
      session.once('error', (err: Error) => reject(new Error(`the tunnel connection failed before a response: ${err.message}`)));
    });
    ended.catch(() => {});
    const [headers] = (await deadline(Promise.race([once(stream, 'response'), ended]), 'tunnel response')) as [Record<string, unknown>];
    if (headers[':status'] !== 200) throw new Error(`the tunnel answered ${String(headers[':status'])}`);
    const inner = await tlsTo(0, { socket: stream, ...mtlsOptions(certs, pair) });
    return { inner, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** Tells the program what its next HTTP/2 stream gets (`ok`, or a fault kind). */
export async function h2Next(ports: Ports, kind: string): Promise<void> {
  const s = await dial(ports.control);
  s.end(kind === 'clear' ? 'h2-clear\n' : `h2 ${kind}\n`);
  let got = '';
  s.on('data', (c: Buffer) => (got += c.toString()));
  await deadline(once(s, 'close'), 'control port');
  if (!got.startsWith('ok')) throw new Error(`the program refused h2 ${kind}: ${got}`);
}

/** One normal request through `name`; rejects saying what was wrong. The program's pid where it can tell. */
export async function probe(name: ListenerName, ports: Ports, certs: Certs): Promise<number | undefined> {
  const port = ports.listeners[name];
  switch (name) {
    case 'psk':
      await echoes(await tlsTo(port, pskOptions()), 'TLS-PSK echo');
      return undefined;
    case 'mtls-http': {
      const r = await httpsGet(port, '/ok', mtlsOptions(certs));
      if (r.status !== 200) throw new Error(`GET /ok answered ${r.status}: ${r.body.slice(0, 200)}`);
      const { pid, head } = JSON.parse(r.body) as { pid: number; head: string };
      if (!/^x-forwarded-client-cert: .*Hash=[0-9a-f]{64}/im.test(head)) throw new Error(`the program got no XFCC: ${head}`);
      return pid;
    }
    case 'mtls-any':
      await echoes(await dial(port), 'plaintext echo');
      await echoes(await tlsTo(port, mtlsOptions(certs)), 'mutual TLS echo');
      return undefined;
    case 'tunnel-in': {
      const t = await tunnelStream(port, certs);
      try {
        await echoes(t.inner, 'h2c tunnel + inner mTLS echo');
      } finally {
        t.close();
      }
      return undefined;
    }
    case 'tunnel-out':
      await echoes(await dial(port), 'echo through tunnel-out -> tunnel-in');
      return undefined;
    case 'tunnel-hostile':
      await h2Next(ports, 'clear');
      await echoes(await dial(port), 'echo through the tunnel to the program\'s HTTP/2 port');
      return undefined;
    case 'egress': {
      const r = await httpGet(port, `http://${HOSTILE_HOST}/ok`);
      if (r.status !== 200) throw new Error(`GET http://${HOSTILE_HOST}/ok answered ${r.status}: ${r.body.slice(0, 200)}`);
      return (JSON.parse(r.body) as { pid: number }).pid;
    }
    case 'metadata': {
      const r = await httpGet(port, '/computeMetadata/v1/project/project-id', { 'Metadata-Flavor': 'Google' });
      if (r.status !== 200 || r.body !== 'alice-proj') throw new Error(`project-id answered ${r.status}: ${r.body.slice(0, 200)}`);
      const tok = await httpGet(port, '/computeMetadata/v1/instance/service-accounts/default/token', { 'Metadata-Flavor': 'Google' });
      if (tok.status !== 200 || !/"access_token"/.test(tok.body)) throw new Error(`token answered ${tok.status}: ${tok.body.slice(0, 200)}`);
      return undefined;
    }
  }
}

