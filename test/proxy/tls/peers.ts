// Peers and fixtures for the tls listener tests: a throwaway PKI made by openssl (and a second,
// unrelated CA, and client certificates with unusual names), the listener started through its
// table entry with secrets read from those files, curl and openssl as clients, small loopback
// backends and a hostile one.
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, type TestContext } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import type { ListenerEnv, ListenerHandle } from '../../../src/proxy/listener.ts';
import { tlsListenerSchema } from '../../../src/config/listeners/tls.ts';
import { tlsType } from '../../../src/proxy/types/tls/type.ts';
import { createPki, issue, type KeyPair, type Pki } from '../../helpers/pki.ts';
import { Lines } from '../../helpers/lines.ts';
import { memoryLog, type MemoryLog } from '../../helpers/log.ts';
import { freePort } from '../../helpers/net.ts';
import { needs } from '../../helpers/tools.ts';
import { tempDir } from '../psk/peers.ts';

export { echoServer, listenLocal, readAll, replyAtEof, tempDir } from '../psk/peers.ts';

export const CLIENT_URI = 'spiffe://tee-init.test/client';
export const SERVER_URI = 'spiffe://tee-init.test/server';
/** A buggy or hostile HTTP program (see the file). */
export const HOSTILE_PROGRAM = fileURLToPath(new URL('./hostile-program.mjs', import.meta.url));

export interface TestPki extends Pki {
  /** A client certificate from an unrelated CA. */
  stranger: KeyPair;
  /** A second client of the right CA, with another SPIFFE id. */
  other: KeyPair;
}

/** Made once per test file: openssl key generation is the slow part. */
export function testPki(dir: string): TestPki {
  const pki = createPki(join(dir, 'a'), { serverSans: ['DNS:localhost', 'IP:127.0.0.1', `URI:${SERVER_URI}`] });
  const strangers = createPki(join(dir, 'b'), { caName: 'some other CA' });
  const leaf = (sans: string) => ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', `subjectAltName=${sans}`];
  const other = issue(pki.dir, pki.ca, 'other', 'another client', leaf('URI:spiffe://elsewhere.test/ns/x/sa/y,DNS:other.test'));
  return { ...pki, stranger: strangers.client, other };
}

export function der(certPath: string): Buffer {
  return new X509Certificate(readFileSync(certPath)).raw;
}

export interface Started {
  handle: ListenerHandle;
  port: number;
  log: MemoryLog;
  /** The secrets the listener reads; a test may replace entries and call reload(). */
  secrets: Map<string, Buffer>;
}

/** Starts a tls listener from config fields (listen defaults to port 0), secrets from `pki` (see `own`), logging at `level` (or into a given log); `env` adds to what the listener is given. */
export async function startTls(t: TestContext, pki: Pki, fields: Record<string, unknown>, level: 'warn' | 'debug' | 'info' | MemoryLog = 'info', env: Partial<ListenerEnv> = {}): Promise<Started> {
  // Client mode presents the client certificate (its EKU is clientAuth), server modes the server's.
  const own = fields.mode === 'client' ? pki.client : pki.server;
  const secrets = new Map<string, Buffer>([
    ['ca', readFileSync(pki.ca.cert)], ['cert', readFileSync(own.cert)], ['key', readFileSync(own.key)],
  ]);
  const config = tlsListenerSchema.parse({ type: 'tls', listen: '127.0.0.1:0', tls: { cert: 'cert', key: 'key', ca: 'ca' }, ...fields });
  const log = typeof level === 'string' ? memoryLog(level) : level;
  const controller = new AbortController();
  const handle = await tlsType.start(config, {
    name: 'test', log: log.log, signal: controller.signal,
    secret: (n) => {
      const s = secrets.get(n);
      if (!s) throw new Error(`no secret ${n}`);
      return s;
    },
    tokens: { source: () => { throw new Error('no tokens in tls tests'); } },
    ...env,
  });
  t.after(() => handle.close());
  return { handle, port: handle.address.port, log, secrets };
}

/** A Node mutual-TLS client (for half-close and bulk tests; curl and openssl cover the rest). */
export async function mtlsConnect(port: number, pki: Pki, client: KeyPair = pki.client, allowHalfOpen = false): Promise<TLSSocket> {
  const s = tlsConnect({
    host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), cert: readFileSync(client.cert), key: readFileSync(client.key),
    ...({ allowHalfOpen } as object),
  });
  await once(s, 'secureConnect');
  return s;
}

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bytes: number;
}

/** An HTTP backend that answers each request with what it saw (headers, body size) as JSON. */
export async function httpBackend(t: TestContext): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createHttpServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const s = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, bytes };
      seen.push(s);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(s));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

export interface CurlResult {
  code: number | undefined;
  stdout: string;
  stderr: string;
}

/** curl against https://127.0.0.1:PORT (or http:// with `plain`), verifying the server by the test CA. */
export async function curl(port: number, pki: Pki, o: { client?: KeyPair | null; plain?: boolean; path?: string; args?: string[] } = {}): Promise<CurlResult> {
  const client = o.client === undefined ? pki.client : o.client;
  const url = `${o.plain ? 'http' : 'https'}://127.0.0.1:${port}${o.path ?? '/'}`;
  const r = await execa('curl', [
    '-sS', '--max-time', '20', '--noproxy', '*',
    ...(o.plain ? [] : ['--cacert', pki.ca.cert, ...(client ? ['--cert', client.cert, '--key', client.key] : [])]),
    ...(o.args ?? []), url,
  ], { reject: false });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** Every value of header `name` (lower case) in node's rawHeaders, in order. */
export function headerValues(raw: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

/** openssl s_server requiring a client certificate from `pki`'s CA; its stdout is what it received. */
export async function sServer(t: TestContext, pki: Pki, extra: string[] = []): Promise<{ port: number; out: Lines; write(s: string): void } | undefined> {
  if (!needs(t, 'openssl', 'apt-get install openssl')) return undefined;
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const proc = execa('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', pki.server.cert, '-key', pki.server.key,
      '-CAfile', pki.ca.cert, '-Verify', '1', '-verify_return_error', ...extra], { reject: false, stdin: 'pipe', timeout: 60_000 });
    t.after(async () => {
      proc.kill('SIGKILL');
      await proc;
    });
    const out = new Lines(proc.stdout!);
    try {
      await out.until(/^ACCEPT/, 10_000);
      return { port, out, write: (s) => void proc.stdin!.write(s) };
    } catch (err) {
      if (attempt >= 2) throw err;
    }
  }
}

// Ordinary names, and what a hostile owner could put in a certificate: UTF-8 beyond Latin-1,
// quotes, a backslash, DN specials, a control character, a multi-valued RDN.
export const SUBJECT = '/O=Łódź Sp. z o.o. \x01ctl/CN=клиент "q" a\\\\b, c; d+OU=dział \\+ 1';
export const SANS = ['URI.1=spiffe://x/Łódź', 'URI.2=spiffe://a/b,c', 'URI.3=spiffe://ctl/a\x01b', 'URI.4=spiffe://q/x;y=z', 'DNS.1=plain.test'];

/** A client certificate of the test CA with `subject` and `sans` (openssl -utf8, SANs from a config file). */
export function clientWith(pki: Pki, dir: string, name: string, subject: string, sans: string[]): KeyPair {
  const cnf = join(dir, `${name}.cnf`);
  writeFileSync(cnf, ['[req]', 'distinguished_name=dn', '[dn]', '[ext]', 'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth', 'subjectAltName=@alt', '[alt]', ...sans, ''].join('\n'));
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', pair.key, '-out', pair.cert, '-utf8', '-multivalue-rdn', '-subj', subject, '-CA', pki.ca.cert, '-CAkey', pki.ca.key,
    '-config', cnf, '-extensions', 'ext'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return pair;
}

export const unusualClient = (pki: Pki, dir: string) => clientWith(pki, dir, 'unusual', SUBJECT, SANS);

/** A mutual-TLS client holding one keep-alive connection: a bystander that must survive others' faults. */
export function bystander(t: TestContext, port: number, pki: Pki) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) });
  t.after(() => agent.destroy());
  return async (path = '/bystander'): Promise<{ status: number; reused: boolean }> => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, agent, servername: 'localhost' });
    req.end();
    const [res] = await once(req, 'response');
    res.resume();
    await once(res, 'end');
    return { status: res.statusCode!, reused: req.reusedSocket };
  };
}

/** ./hostile-program.mjs as a child process: a buggy or hostile HTTP program. */
export async function hostileProgram(t: TestContext): Promise<{ port: number }> {
  const proc = execa(process.execPath, [HOSTILE_PROGRAM, '0'], { reject: false });
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc;
  });
  const m = await new Lines(proc.stdout!).until(/^listening (\d+)$/, 15_000);
  return { port: Number(m[1]) };
}

export function records(log: MemoryLog, message: string): Record<string, unknown>[] {
  return log.records().filter((r) => String(r.message).includes(message));
}

export function pkiFor(t: TestContext): TestPki {
  return testPki(tempDir(t, 'tee-init-tls-'));
}

/**
 * One PKI for a whole test file (key generation is the slow part): call at module level; the
 * returned object's fields are set before the first test and the directory removed after the last.
 */
export function filePki(prefix: string): { pki: TestPki; dir: string } {
  const shared = {} as { pki: TestPki; dir: string };
  before(() => {
    shared.dir = mkdtempSync(join(tmpdir(), prefix));
    shared.pki = testPki(shared.dir);
  });
  after(() => rmSync(shared.dir, { recursive: true, force: true }));
  return shared;
}
