// The redis and postgres presets' default reloads, done exactly as rendered against the real
// programs: secrets in a tmpfs output directory laid out like the rotation contract (OUT/NAME ->
// ..data/NAME, ..data swapped atomically to a new generation), the program started from the
// rendered argv as its own user, a rotation (new certificate from the same CA, then a new CA, then
// a broken pair), the preset's reload (the exec argv run as the program's user; the signal sent),
// then real clients: openssl s_client shows the certificate NEW connections get, while a
// redis-cli / psql session opened before the rotation keeps working on its connection.
// The test stands in for the refresh loop (which performs the same steps in src/).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { execa, type ResultPromise } from 'execa';
import { render, type Rendered } from '../../src/render/index.ts';
import { Lines } from '../helpers/lines.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, issue, leaf, type KeyPair, type Pki } from '../helpers/pki.ts';
import { needsPostgres, PG_BIN } from '../helpers/postgres.ts';
import { isRoot, needs } from '../helpers/tools.ts';

const NOBODY = { uid: 65534, gid: 65534 };
const DAEMON = { uid: 1, gid: 1 };
const FILES = { ca: 'ca.pem', cert: 'server.crt', key: 'server.key' } as const;

/** The output directory as the rotation contract lays it out (layout.txt), owned by the program's user. */
class Output {
  #generation = 0;
  readonly dir: string;
  readonly owner: { uid: number; gid: number };
  constructor(dir: string, owner: { uid: number; gid: number }) {
    this.dir = dir;
    this.owner = owner;
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, owner.uid, owner.gid);
  }
  path(name: keyof typeof FILES): string {
    return join(this.dir, FILES[name]);
  }
  /** Writes a complete generation, then points ..data at it in one rename(2); the visible links are made once. */
  publish(ca: string, server: KeyPair): void {
    const gen = `..${Date.now()}.${++this.#generation}`;
    mkdirSync(join(this.dir, gen), { mode: 0o700 });
    chownSync(join(this.dir, gen), this.owner.uid, this.owner.gid);
    for (const [name, from] of [[FILES.ca, ca], [FILES.cert, server.cert], [FILES.key, server.key]] as const) {
      const to = join(this.dir, gen, name);
      copyFileSync(from, to);
      chmodSync(to, 0o400);
      chownSync(to, this.owner.uid, this.owner.gid);
    }
    symlinkSync(gen, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.values(FILES)) if (!existsSync(join(this.dir, name))) symlinkSync(join('..data', name), join(this.dir, name));
  }
  /** Renders the preset and writes its files (plain files in OUT, as materialize does). */
  render(run: Parameters<typeof render>[0]['run']): Rendered {
    const rendered = render({ run, outputDir: this.dir, secrets: { ca: { path: this.path('ca') }, cert: { path: this.path('cert') }, key: { path: this.path('key') } } });
    for (const f of rendered.files) {
      writeFileSync(join(this.dir, f.name), f.content, { mode: f.mode });
      chownSync(join(this.dir, f.name), this.owner.uid, this.owner.gid);
    }
    return rendered;
  }
}

const serial = (pem: string | Buffer, from: 'file' | 'stdin' = 'stdin'): string =>
  execFileSync('openssl', ['x509', '-noout', '-serial', ...(from === 'file' ? ['-in', pem.toString()] : [])], from === 'stdin' ? { input: pem } : {}).toString().trim();

/**
 * The certificate a NEW connection gets, by its serial; verified against `ca` (s_client fails
 * otherwise). `starttls: postgres` speaks PostgreSQL's SSLRequest first.
 */
async function served(port: number, ca: string, options: { client?: KeyPair; starttls?: 'postgres' } = {}): Promise<string> {
  const r = await execa(
    'openssl',
    ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-verify_hostname', 'localhost', '-CAfile', ca, '-verify_return_error',
      ...(options.client ? ['-cert', options.client.cert, '-key', options.client.key] : []), ...(options.starttls ? ['-starttls', options.starttls] : [])],
    { input: '', reject: false, timeout: 10_000 },
  );
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/.exec(r.stdout)?.[0];
  if (r.exitCode !== 0 || pem === undefined) throw new Error(`s_client to ${port} failed (${r.exitCode}): ${r.stderr.slice(-400)}`);
  return serial(pem);
}

/** A second server certificate from the same CA: what a collaborator's routine rotation produces. */
const renewed = (pki: Pki, n: number): KeyPair => issue(pki.dir, pki.ca, `server-${n}`, `tee-init rotated server ${n}`, leaf('serverAuth', ['DNS:localhost', 'IP:127.0.0.1']));

/** A long-lived client session (redis-cli or psql reading commands from stdin), one reply line per command. */
type Interactive = ResultPromise<{ stdin: 'pipe'; stdout: 'pipe'; stderr: 'pipe'; reject: false }>;
class Session {
  readonly out: Lines;
  readonly proc: Interactive;
  constructor(proc: Interactive) {
    this.proc = proc;
    this.out = new Lines(proc.stdout);
  }
  async ask(command: string): Promise<string> {
    this.proc.stdin.write(`${command}\n`);
    return this.out.next();
  }
}

function killer(t: TestContext, proc: { pid?: number | undefined; kill(s?: NodeJS.Signals): boolean }) {
  t.after(() => void proc.kill('SIGKILL')); // only if a failure left it running
}

test('redis: the preset\'s CONFIG SET reload serves rotated certificates to new connections; open ones keep working', async (t) => {
  if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'redis-cli', 'apt-get install redis-tools') || !needs(t, 'openssl', 'apt-get install openssl')) return;
  if (!isRoot) {
    if (process.env.CI) throw new Error('the redis reload test runs redis as another user: it needs root in CI');
    return t.skip('needs root to run redis as nobody');
  }
  const root = `/dev/shm/tee-init-reload-${randomBytes(4).toString('hex')}`;
  mkdirSync(root, { mode: 0o711 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const pki = createPki(join(root, 'pki'));
  const out = new Output(join(root, 'out'), NOBODY);
  out.publish(pki.ca.cert, pki.server);

  const tlsPort = await freePort();
  const rendered = out.render({ preset: 'redis', with: { tlsPort, bind: '127.0.0.1' } });
  assert.ok(typeof rendered.reload === 'object' && 'exec' in rendered.reload, 'the redis preset reloads by a command');
  const reload = rendered.reload;
  const runReload = (as = NOBODY) => execa(reload.exec[0]!, reload.exec.slice(1), { ...as, reject: false, timeout: reload.timeoutMs });

  const server = execa(rendered.argv[0]!, rendered.argv.slice(1), { ...NOBODY, cwd: out.dir, reject: false, stdout: 'pipe' });
  killer(t, server);
  const log = new Lines(server.stdout);
  await log.until(/Ready to accept connections/);

  const cli = (client: KeyPair, ca: string) => ['-h', '127.0.0.1', '-p', String(tlsPort), '--tls', '--sni', 'localhost', '--cacert', ca, '--cert', client.cert, '--key', client.key];
  const session = new Session(execa('redis-cli', cli(pki.client, pki.ca.cert), { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false }));
  killer(t, session.proc);
  assert.equal(await session.ask('SET before rotation'), 'OK');
  const sessionId = await session.ask('CLIENT ID');
  assert.equal(await served(tlsPort, pki.ca.cert, { client: pki.client }), serial(pki.server.cert, 'file'));

  await t.test('the admin socket is the program user\'s alone: another user cannot reach it', async () => {
    const r = await execa('redis-cli', ['-s', join(out.dir, 'redis.sock'), 'ping'], { ...DAEMON, reject: false, timeout: 10_000 });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stdout + r.stderr, /Permission denied/);
  });

  await t.test('a new certificate from the same CA: reload exits 0, a new connection gets it, the open session stays', async () => {
    const next = renewed(pki, 2);
    out.publish(pki.ca.cert, next);
    // Without the reload, redis keeps serving what it read: the swap alone changes nothing.
    assert.equal(await served(tlsPort, pki.ca.cert, { client: pki.client }), serial(pki.server.cert, 'file'));
    const r = await runReload();
    assert.equal(r.exitCode, 0, `${r.stdout} ${r.stderr}`);
    assert.equal(await served(tlsPort, pki.ca.cert, { client: pki.client }), serial(next.cert, 'file'));
    assert.equal(await session.ask('GET before'), 'rotation');
    assert.equal(await session.ask('CLIENT ID'), sessionId, 'the same connection');
  });

  await t.test('a new CA: new clients need a certificate from it, the open session stays', async () => {
    const pki2 = createPki(join(root, 'pki2'), { caName: 'tee-init rotated CA' });
    out.publish(pki2.ca.cert, pki2.server);
    const r = await runReload();
    assert.equal(r.exitCode, 0, `${r.stdout} ${r.stderr}`);
    assert.equal(await served(tlsPort, pki2.ca.cert, { client: pki2.client }), serial(pki2.server.cert, 'file'));
    const fresh = await execa('redis-cli', [...cli(pki2.client, pki2.ca.cert), 'GET', 'before'], { reject: false, timeout: 10_000 });
    assert.equal(fresh.stdout, 'rotation', fresh.stderr);
    const old = await execa('redis-cli', [...cli(pki.client, pki2.ca.cert), 'PING'], { reject: false, timeout: 10_000 });
    assert.notEqual(old.stdout, 'PONG', 'a client certificate from the old CA is refused now');
    assert.equal(await session.ask('GET before'), 'rotation');
    assert.equal(await session.ask('CLIENT ID'), sessionId);
  });

  await t.test('a key that does not match the certificate: reload exits non-zero, redis keeps the last good set', async () => {
    const current = serial(join(root, 'pki2', 'server.crt'), 'file');
    const other = createPki(join(root, 'pki3'));
    out.publish(join(root, 'pki2', 'ca.crt'), { cert: join(root, 'pki2', 'server.crt'), key: other.server.key });
    const r = await runReload();
    assert.equal(r.exitCode, 1, `${r.stdout} ${r.stderr}`);
    assert.match(r.stdout + r.stderr, /ERR CONFIG SET failed/);
    assert.equal(await served(tlsPort, join(root, 'pki2', 'ca.crt'), { client: { cert: join(root, 'pki2', 'client.crt'), key: join(root, 'pki2', 'client.key') } }), current);
  });

  await t.test('against a stopped redis the reload fails (non-zero), so the caller sees it', async () => {
    session.proc.stdin.end();
    await session.proc;
    server.kill('SIGTERM');
    const exited = await server;
    assert.equal(exited.exitCode, 0);
    assert.equal(existsSync(join(out.dir, 'redis.sock')), false, 'redis removed its socket');
    const r = await runReload();
    assert.equal(r.exitCode, 1, `${r.stdout} ${r.stderr}`);
    assert.match(r.stderr, /Could not connect to Redis/);
  });
});

test('postgres: the preset\'s SIGHUP serves rotated certificates to new connections; an open psql session keeps working', async (t) => {
  if (!needsPostgres(t)) return;
  const root = `/dev/shm/tee-init-reload-pg-${randomBytes(4).toString('hex')}`;
  mkdirSync(root, { mode: 0o711 });
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const pki = createPki(join(root, 'pki'), { clientName: 'postgres' });
  const pg = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
  const out = new Output(join(root, 'out'), pg);
  out.publish(pki.ca.cert, pki.server);
  const env = { PATH: `${PG_BIN}:/usr/bin:/bin` };
  await execa('initdb', ['-D', join(out.dir, 'pgdata'), '--no-sync', '-E', 'UTF8', '--locale=C', '-U', 'postgres'], { ...pg, env, extendEnv: false, cwd: out.dir });

  const port = await freePort();
  const rendered = out.render({ preset: 'postgres', with: { port, listenAddresses: '127.0.0.1' } });
  assert.deepEqual(rendered.reload, { signal: 'SIGHUP' });
  const reload = rendered.reload as { signal: NodeJS.Signals };
  const server = execa(rendered.argv[0]!, rendered.argv.slice(1), { ...pg, env, extendEnv: false, cwd: out.dir, reject: false, stderr: 'pipe' });
  killer(t, server);
  const log = new Lines(server.stderr);
  await log.until(/database system is ready to accept connections/, 30_000);

  const conn = (client: KeyPair, ca: string) =>
    `host=localhost hostaddr=127.0.0.1 port=${port} user=postgres dbname=postgres connect_timeout=5 sslmode=verify-full sslrootcert=${ca} sslcert=${client.cert} sslkey=${client.key}`;
  // -A -t: one bare line per result; stdin is read and run statement by statement.
  const session = new Session(execa('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', conn(pki.client, pki.ca.cert)], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', reject: false }));
  killer(t, session.proc);
  const backend = await session.ask('select pg_backend_pid();');
  assert.match(backend, /^\d+$/);
  const serverSerial = () => served(port, out.path('ca'), { starttls: 'postgres' });
  assert.equal(await serverSerial(), serial(pki.server.cert, 'file'));
  /** The postmaster loads the new files after logging the SIGHUP; poll new connections until one shows `want`. */
  const untilServed = async (want: string, ca: string) => {
    for (const deadline = Date.now() + 10_000; ; ) {
      const got = await served(port, ca, { starttls: 'postgres' }).catch(() => undefined);
      if (got === want) return;
      if (Date.now() > deadline) assert.fail(`new connections still get ${got}, not ${want}`);
    }
  };

  await t.test('a new certificate from the same CA: after the SIGHUP a new connection gets it, the open session stays', async () => {
    const next = renewed(pki, 2);
    out.publish(pki.ca.cert, next);
    assert.equal(await serverSerial(), serial(pki.server.cert, 'file'), 'the swap alone changes nothing');
    process.kill(server.pid!, reload.signal);
    await log.until(/received SIGHUP, reloading configuration files/);
    await untilServed(serial(next.cert, 'file'), pki.ca.cert);
    const fresh = await execa('psql', ['-X', '-Atc', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()', conn(pki.client, pki.ca.cert)], { reject: false });
    assert.equal(fresh.stdout, 't', fresh.stderr);
    assert.equal(await session.ask('select pg_backend_pid();'), backend, 'the same connection');
  });

  await t.test('a new CA: psql verify-full with the new CA and client certificate connects; the open session stays', async () => {
    const pki2 = createPki(join(root, 'pki2'), { caName: 'tee-init rotated CA', clientName: 'postgres' });
    out.publish(pki2.ca.cert, pki2.server);
    process.kill(server.pid!, reload.signal);
    await log.until(/received SIGHUP, reloading configuration files/);
    await untilServed(serial(pki2.server.cert, 'file'), pki2.ca.cert);
    const fresh = await execa('psql', ['-X', '-Atc', 'select 1', conn(pki2.client, pki2.ca.cert)], { reject: false });
    assert.equal(fresh.stdout, '1', fresh.stderr);
    const old = await execa('psql', ['-X', '-Atc', 'select 1', conn(pki.client, pki.ca.cert)], { reject: false });
    assert.notEqual(old.exitCode, 0, 'the old CA no longer verifies the server, nor the server the old client');
    assert.equal(await session.ask('select pg_backend_pid();'), backend);
  });

  await t.test('a key that does not match the certificate: postgres logs it and keeps the last good set', async () => {
    const other = createPki(join(root, 'pki3'));
    out.publish(join(root, 'pki2', 'ca.crt'), { cert: join(root, 'pki2', 'server.crt'), key: other.server.key });
    process.kill(server.pid!, reload.signal);
    await log.until(/SSL configuration was not reloaded/);
    assert.equal(await served(port, join(root, 'pki2', 'ca.crt'), { starttls: 'postgres' }), serial(join(root, 'pki2', 'server.crt'), 'file'));
    assert.equal(await session.ask('select pg_backend_pid();'), backend);
  });

  session.proc.stdin.end();
  await session.proc;
  server.kill('SIGINT');
  assert.equal((await server).exitCode, 0);
});
