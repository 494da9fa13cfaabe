// Real peers for the PSK proxy tests: redis-server, stunnel, openssl s_client/s_server, and
// small loopback servers. Every port is chosen by the kernel; readiness is awaited, not slept on.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startPskProxy, type PskClientOptions, type PskProxy, type PskProxyOptions, type PskServerOptions } from '../../../src/proxy/types/psk/index.ts';
import { Lines } from '../../helpers/lines.ts';
import { needs } from '../../helpers/tools.ts';
import { freePort } from '../../helpers/net.ts';
import { memoryLog } from '../../helpers/log.ts';

// The psk.md test vector: alice and bob's shares and the key sha256-concat makes of them.
export const ALICE = '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90';
export const BOB = 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2';
export const KEY_HEX = '2f835009708d32bb71a72a0deda737be2049acc6deae0b1ec7ebd4f25bc16b7c';
export const KEY = Buffer.from(KEY_HEX, 'hex');
export const WRONG_KEY_HEX = 'a'.repeat(32) + 'b'.repeat(32);
export const IDENTITY = 'Client1';

export { freePort, memoryLog };

export const INSTALL = {
  openssl: 'apt-get install openssl',
  stunnel: 'apt-get install stunnel4',
  redis: 'apt-get install redis-server redis-tools',
};


export function tempDir(t: TestContext, prefix = 'tee-init-psk-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

type Proc = ResultPromise<{ reject: false; stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe' }>;

function spawn(t: TestContext, file: string, args: string[]): Proc {
  const proc = execa(file, args, { reject: false, stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', timeout: 60_000 }) as Proc;
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  return proc;
}

/** Waits for a line matching `pattern` on a stream of `proc`; fails with everything it printed. */
async function waitLine(proc: Proc, stream: 'stdout' | 'stderr', pattern: RegExp, what: string, timeoutMs = 10_000): Promise<Lines> {
  const lines = new Lines(proc[stream]);
  const exited = proc.then((r) => {
    throw new Error(`${what} exited (${r.exitCode ?? r.signal}) before it was ready:\n${r.stdout}\n${r.stderr}`);
  });
  await Promise.race([lines.until(pattern, timeoutMs), exited]);
  exited.catch(() => {});
  return lines;
}

export interface Redis {
  port: number;
  proc: Proc;
}

/** A throwaway redis-server on 127.0.0.1 (no persistence). */
export async function startRedis(t: TestContext): Promise<Redis | undefined> {
  if (!needs(t, 'redis-server', INSTALL.redis)) return undefined;
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const proc = spawn(t, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice']);
    try {
      await waitLine(proc, 'stdout', /Ready to accept connections/, 'redis-server');
      return { port, proc };
    } catch (err) {
      if (attempt >= 2) throw err; // another process took the port in between: try another
    }
  }
}

export interface Stunnel {
  port: number;
  proc: Proc;
}

export interface StunnelService {
  client: boolean;
  connect: number;
  identity?: string;
  keyHex?: string;
  /** e.g. { ciphersuites: 'TLS_AES_128_GCM_SHA256' } or { sslVersionMax: 'TLSv1.2', ciphers: 'PSK' } */
  extra?: Record<string, string>;
}

/** stunnel (Debian stunnel4) in the foreground with one PSK service; resolves once it listens. */
export async function startStunnel(t: TestContext, svc: StunnelService): Promise<Stunnel | undefined> {
  if (!needs(t, 'stunnel', INSTALL.stunnel)) return undefined;
  const dir = tempDir(t, 'tee-init-stunnel-');
  const secrets = join(dir, 'psk.txt');
  writeFileSync(secrets, `${svc.identity ?? IDENTITY}:${svc.keyHex ?? KEY_HEX}\n`, { mode: 0o600 });
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const conf = [
      'foreground = yes', 'pid =', 'debug = 5', 'syslog = no',
      '[psk]', `client = ${svc.client ? 'yes' : 'no'}`, `accept = 127.0.0.1:${port}`, `connect = 127.0.0.1:${svc.connect}`,
      `PSKsecrets = ${secrets}`, ...(svc.client ? [`PSKidentity = ${svc.identity ?? IDENTITY}`] : []),
      ...Object.entries(svc.extra ?? {}).map(([k, v]) => `${k} = ${v}`),
    ];
    const file = join(dir, `stunnel-${attempt}.conf`);
    writeFileSync(file, conf.join('\n') + '\n');
    const proc = spawn(t, 'stunnel', [file]);
    try {
      await waitLine(proc, 'stderr', /Configuration successful/, 'stunnel');
      return { port, proc };
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
}

export interface SClient {
  proc: Proc;
  out: Lines;
  write(text: string): void;
  /** Resolves with the exit code; a failed handshake exits non-zero. */
  exit: Promise<number | undefined>;
}

/** `openssl s_client -psk ... -quiet` with stdin kept open by the test. */
export function sClient(t: TestContext, port: number, args: { keyHex?: string; identity?: string; extra?: readonly string[] } = {}): SClient {
  const proc = spawn(t, 'openssl', [
    's_client', '-connect', `127.0.0.1:${port}`, '-psk', args.keyHex ?? KEY_HEX, '-psk_identity', args.identity ?? IDENTITY, '-quiet',
    ...(args.extra ?? ['-tls1_3']),
  ]);
  return { proc, out: new Lines(proc.stdout), write: (s) => void proc.stdin.write(s), exit: proc.then((r) => r.exitCode) };
}

export interface SServer {
  port: number;
  proc: Proc;
  out: Lines;
  write(text: string): void;
}

/** `openssl s_server -nocert -psk ...`: prints what it receives, sends what the test writes. */
export async function sServer(t: TestContext, args: { keyHex?: string; extra?: string[] } = {}): Promise<SServer | undefined> {
  if (!needs(t, 'openssl', INSTALL.openssl)) return undefined;
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const proc = spawn(t, 'openssl', [
      // Not -quiet: that also hides the ACCEPT line that says it listens.
      's_server', '-accept', `127.0.0.1:${port}`, '-nocert', '-psk', args.keyHex ?? KEY_HEX, '-psk_identity', IDENTITY,
      ...(args.extra ?? ['-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256']),
    ]);
    try {
      const out = await waitLine(proc, 'stdout', /^ACCEPT/, 'openssl s_server');
      return { port, proc, out, write: (s) => void proc.stdin.write(s) };
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
}

/** Sends RESP commands over a plain TCP connection and returns the reply lines once `until` matches. */
export async function tcpExchange(port: number, send: string, until: RegExp, timeoutMs = 10_000): Promise<string> {
  const s = tcpConnect({ host: '127.0.0.1', port });
  try {
    s.setEncoding('utf8');
    s.write(send);
    let got = '';
    const timer = setTimeout(() => s.destroy(new Error(`no reply matching ${until} within ${timeoutMs} ms; got ${JSON.stringify(got)}`)), timeoutMs);
    try {
      for await (const chunk of s) {
        got += chunk;
        if (until.test(got)) return got;
      }
    } finally {
      clearTimeout(timer);
    }
    throw new Error(`connection ended before a reply matching ${until}; got ${JSON.stringify(got)}`);
  } finally {
    s.destroy();
  }
}

/**
 * A backend that answers only after the client's FIN: it replies "got N bytes" and ends. Through
 * a proxy that closes both directions on the first end, the reply is lost.
 */
export async function replyAtEof(t: TestContext): Promise<{ port: number; server: Server }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(`got ${n} bytes\n`));
    s.on('error', () => {});
  });
  return listenLocal(t, server);
}

/** An echo backend. */
export async function echoServer(t: TestContext): Promise<{ port: number; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  return { ...(await listenLocal(t, server)), sockets };
}

export async function listenLocal(t: TestContext, server: Server): Promise<{ port: number; server: Server }> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.close();
    (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
  });
  return { port: (server.address() as AddressInfo).port, server };
}

/** A Node TLS-1.3 PSK client; resolves once the session is up. Not half-open unless asked, so it closes when the proxy does. */
export async function pskConnect(port: number, opts: { key?: Buffer; identity?: string; allowHalfOpen?: boolean } = {}): Promise<TLSSocket> {
  const s = tlsConnect({
    host: '127.0.0.1', port, minVersion: 'TLSv1.3', ciphers: 'TLS_AES_128_GCM_SHA256',
    pskCallback: () => ({ psk: opts.key ?? KEY, identity: opts.identity ?? IDENTITY }),
    checkServerIdentity: () => undefined,
    ...({ allowHalfOpen: opts.allowHalfOpen ?? false } as object),
  });
  await once(s, 'secureConnect');
  return s;
}

/** Resolves when the socket has closed, with how long it took from the call. */
export async function closedWithin(s: Socket): Promise<number> {
  const t0 = performance.now();
  if (!s.closed) await once(s, 'close');
  return performance.now() - t0;
}

/** Reads a socket to its end. */
export async function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** startPskProxy, closed when the test ends. */
export async function startProxy(t: TestContext, options: PskProxyOptions): Promise<PskProxy> {
  const proxy = await startPskProxy(options);
  t.after(() => proxy.close());
  return proxy;
}

/** Server-mode options with the test vector key for Client1, quiet logging unless given. */
export function serverOptions(connectPort: number, extra: Partial<PskServerOptions> = {}): PskServerOptions {
  return { mode: 'server', listen: '127.0.0.1:0', connect: `127.0.0.1:${connectPort}`, identities: new Map([[IDENTITY, KEY]]), log: memoryLog('warn').log, ...extra };
}

export function clientOptions(connectPort: number, extra: Partial<PskClientOptions> = {}): PskClientOptions {
  return { mode: 'client', listen: '127.0.0.1:0', connect: `127.0.0.1:${connectPort}`, identity: IDENTITY, key: KEY, log: memoryLog('warn').log, ...extra };
}
