// Issue 14 through the whole product: the bundle with refresh:, certificates and PSK shares from
// the fake Secret Manager, a new version added while the programs run, a SIGHUP to the init to
// refresh now, and independent clients (openssl s_client, redis) that see the new material on
// new connections while an open one keeps working.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, SHARE_B, type Boot } from '../helpers/boot.ts';
import type { LogRecord, LogTail } from '../helpers/init.ts';
import { Lines, until } from '../helpers/lines.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, issue, type KeyPair, type Pki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';

const SERVER_EXT = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth', 'subjectAltName=DNS:localhost,IP:127.0.0.1'];

/** The next record with `text` logged after this call (earlier ones do not count). */
function next(log: LogTail, text: string, timeoutMs = 20_000): Promise<LogRecord> {
  const from = log.records.length;
  return log.waitFor((r) => log.records.indexOf(r) >= from && r.message.includes(text), timeoutMs);
}

/**
 * An open mutual-TLS session through openssl s_client (kept open): the server certificate's
 * subject it saw, and PING → +PONG over the same connection as often as asked.
 */
async function session(pki: Pki, port: number, client?: KeyPair): Promise<{ subject: string; ping(): Promise<boolean>; close(): void }> {
  const c = client ?? pki.client;
  const proc = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', pki.ca.cert, '-cert', c.cert, '-key', c.key, '-verify_return_error', '-ign_eof'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const lines = new Lines(proc.stdout);
  const subject = (await lines.until(/^subject=(.*)$/, 15_000))[1]!;
  return { subject, ...resp(proc, lines) };
}

/** PING → +PONG over an open s_client (false once it has ended), and closing it. */
function resp(proc: ChildProcess, lines: Lines): { ping(): Promise<boolean>; close(): void } {
  return {
    async ping() {
      if (proc.exitCode !== null || proc.signalCode !== null) return false;
      proc.stdin!.write('PING\r\n');
      return lines.until(/\+PONG/, 5_000).then(() => true, () => false);
    },
    close: () => void proc.kill('SIGKILL'),
  };
}

async function metrics(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

describe('rotation through the config', () => {
  let b: Boot;
  let pki: Pki;
  let rotated: KeyPair;
  let stranger: KeyPair;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tee-init-rotation-'));
    pki = createPki(dir);
    rotated = issue(dir, pki.ca, 'server2', 'tee-init rotated server', SERVER_EXT);
    stranger = issue(dir, pki.ca, 'server3', 'tee-init other server', SERVER_EXT);
    b = await boot({ pem: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) } });
  });
  after(async () => {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh pair of secrets (cert, key) at version 1 holding the first server certificate. */
  function freshSecrets(tag: string) {
    const cert = `projects/alice-proj/secrets/rot-cert-${tag}`;
    const key = `projects/alice-proj/secrets/rot-key-${tag}`;
    b.world.addSecret(cert, readFileSync(pki.server.cert));
    b.world.addSecret(key, readFileSync(pki.server.key));
    const secrets = b.config().secrets as Record<string, Record<string, unknown>>;
    secrets.cert = { ...secrets.cert, ref: `${cert}/versions/latest` };
    secrets.key = { ...secrets.key, ref: `${key}/versions/latest` };
    return { cert, key, secrets, rotate: (pair: KeyPair) => (b.world.addVersion(cert, readFileSync(pair.cert)), b.world.addVersion(key, readFileSync(pair.key))) };
  }

  const redisCommand = (port: number) => ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];

  /** redis behind a strict tls listener (cert, key, ca), refreshed on SIGHUP. */
  const meshConfig = (secrets: unknown, listen: number, redisPort: number, extra: Record<string, unknown> = {}) => b.config({
    secrets,
    run: { command: redisCommand(redisPort) },
    listeners: { mesh: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${redisPort}`, tls: { cert: 'cert', key: 'key', ca: 'ca' } } },
    refresh: { every: '1h' },
    ...extra,
  });

  /** After the SIGTERM: the init's status is `code`, and no generation is left behind. */
  async function ended(proc: ReturnType<Boot['start']>['proc'], log: LogTail, code = 0): Promise<void> {
    assert.equal((await proc).exitCode, code, log.text);
    assert.deepEqual(b.leftovers(), [], 'every generation is wiped at exit');
  }

  test('tls listener: a new version reaches new connections on SIGHUP; an open connection keeps working', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl')) return;
    const s = freshSecrets('listener');
    const [listen, redisPort, health] = [await freePort(), await freePort(), await freePort()];
    const { proc, log } = b.start(meshConfig(s.secrets, listen, redisPort, { health: { listen: `127.0.0.1:${health}` } }));
    try {
      await log.waitFor('all units ready', 20_000);
      const old = await session(pki, listen);
      assert.match(old.subject, /tee-init test server/);
      assert.equal(await old.ping(), true);

      // Nothing new: a refresh reads, compares, and changes nothing.
      let done = next(log, 'no secret changed');
      proc.kill('SIGHUP');
      await done;

      s.rotate(rotated);
      done = next(log, 'refresh: rotated');
      proc.kill('SIGHUP');
      const line = await done;
      assert.deepEqual(line.changed, ['cert', 'key']);
      assert.match(line.message, /reloaded mesh \(listener\)/);

      const fresh = await session(pki, listen);
      assert.match(fresh.subject, /tee-init rotated server/);
      assert.equal(await fresh.ping(), true);
      assert.equal(await old.ping(), true, 'the connection opened before the rotation still works');
      old.close();
      fresh.close();

      assert.deepEqual(readFileSync(join(b.outDir, 'server.crt')), readFileSync(rotated.cert), 'the file at the same path holds the new certificate');
      const m = await metrics(health);
      assert.match(m, /^tee_init_refresh_last_result\{result="rotated"\} 1$/m);
      assert.match(m, /^tee_init_refresh_total\{result="unchanged"\} 1$/m);
      assert.match(m, /^tee_init_secret_age_seconds\{secret="cert"\} \d/m);
      assert.match(m, /^tee_init_refresh_next_timestamp_seconds \d/m);
    } finally {
      proc.kill('SIGTERM');
    }
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    for (const pem of [pki.server.key, rotated.key]) assert.equal(log.text.includes(readFileSync(pem, 'utf8').split('\n')[1]!), false, 'no key material in the log');
    assert.deepEqual(b.leftovers(), [], 'every generation is wiped at exit');
  });

  test('redis preset: CONFIG SET through its admin socket (exec) serves the new certificate without a restart', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'redis-cli', 'apt-get install redis-tools') || !needs(t, 'openssl', 'apt-get install openssl')) return;
    const s = freshSecrets('redis');
    const tlsPort = await freePort();
    const { proc, log } = b.start(b.config({ secrets: s.secrets, run: { preset: 'redis', with: { tlsPort } }, refresh: { every: '1h' } }));
    try {
      await log.waitFor('all units ready', 20_000);
      const old = await session(pki, tlsPort);
      assert.match(old.subject, /tee-init test server/);
      s.rotate(rotated);
      const done = next(log, 'refresh: rotated');
      proc.kill('SIGHUP');
      assert.match((await done).message, /reloaded run \(exec redis-cli\)/);
      const fresh = await session(pki, tlsPort);
      assert.match(fresh.subject, /tee-init rotated server/);
      assert.equal(await fresh.ping(), true);
      assert.equal(await old.ping(), true, 'the connection opened before the rotation still works');
      old.close();
      fresh.close();
      assert.equal(log.records.filter((r) => r.message === 'child started').length, 1, 'redis was not restarted');
    } finally {
      proc.kill('SIGTERM');
    }
    await ended(proc, log);
  });

  test('a mismatched pair and a corrupted payload are refused; the old material stays until a good version comes', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl')) return;
    const s = freshSecrets('refused');
    const [listen, redisPort] = [await freePort(), await freePort()];
    const { proc, log } = b.start(meshConfig(s.secrets, listen, redisPort));
    try {
      await log.waitFor('all units ready', 20_000);
      // A certificate whose key is not there (the collaborator uploaded half a rotation).
      b.world.addVersion(s.cert, readFileSync(stranger.cert));
      let failed = next(log, 'refresh failed');
      proc.kill('SIGHUP');
      assert.match((await failed).message, /refresh failed, nothing changed .*secret key: private key matches no certificate/);
      let now = await session(pki, listen);
      assert.match(now.subject, /tee-init test server/);
      now.close();
      assert.deepEqual(readFileSync(join(b.outDir, 'server.crt')), readFileSync(pki.server.cert));

      // The whole pair, but the certificate arrives corrupted.
      s.rotate(rotated);
      b.world.gcp.fault('sm', { corruptCrc: true }, { secret: s.cert });
      failed = next(log, 'refresh failed');
      proc.kill('SIGHUP');
      assert.match((await failed).message, /secret cert .*fails its CRC32C check/);
      now = await session(pki, listen);
      assert.match(now.subject, /tee-init test server/);
      now.close();

      b.world.gcp.clearFaults('sm');
      const ok = next(log, 'refresh: rotated');
      proc.kill('SIGHUP');
      await ok;
      now = await session(pki, listen);
      assert.match(now.subject, /tee-init rotated server/);
      now.close();
    } finally {
      proc.kill('SIGTERM');
    }
    await ended(proc, log);
  });

  test('PSK listener: a rotated share changes the key for new connections; an open one keeps working', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl')) return;
    const shareA = 'projects/alice-proj/secrets/rot-psk-a';
    const first = randomBytes(32).toString('hex');
    const second = randomBytes(32).toString('hex');
    b.world.addSecret(shareA, `${first}\n`);
    const secrets = b.config().secrets as Record<string, Record<string, unknown>>;
    secrets.share_a = { ...secrets.share_a, ref: `${shareA}/versions/latest` };
    const keyOf = (a: string) => createHash('sha256').update(a + SHARE_B).digest('hex');
    const [listen, redisPort] = [await freePort(), await freePort()];
    const { proc, log } = b.start(b.config({
      secrets,
      run: { command: redisCommand(redisPort) },
      psk: { mode: 'server', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${redisPort}`, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } },
      refresh: { every: '1h' },
    }));
    try {
      await log.waitFor('all units ready', 20_000);
      const open = await pskSession(listen, keyOf(first));
      assert.equal(await open.ping(), true);
      b.world.addVersion(shareA, `${second}\n`);
      const done = next(log, 'refresh: rotated');
      proc.kill('SIGHUP');
      assert.deepEqual((await done).changed, ['share_a']);
      const fresh = await pskSession(listen, keyOf(second));
      assert.equal(await fresh.ping(), true, 'the new combined key works');
      fresh.close();
      const stale = await pskSession(listen, keyOf(first));
      assert.equal(await stale.ping(), false, 'the old key no longer opens a connection');
      stale.close();
      assert.equal(await open.ping(), true, 'the connection made with the old key still works');
      open.close();
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal((await proc).exitCode, 0, log.text);
    assert.equal(log.text.includes(second), false, 'no share in the log');
    assert.deepEqual(b.leftovers(), []);
  });

  test('run: with reload restart: the program is restarted and reads the new file; its status is still the init\'s', async () => {
    const s = freshSecrets('restart');
    const reads = join(b.dir, 'reads-restart');
    const { proc, log } = b.start(b.config({
      secrets: s.secrets,
      run: {
        command: ['sh', '-c', `trap '' HUP; trap 'exit 7' TERM; sha256sum < {{secrets.cert.path}} >> ${reads}; while :; do sleep 0.05; done`],
        reload: 'restart',
        gracePeriod: '5s',
      },
      refresh: { every: '1h' },
    }));
    try {
      await log.waitFor('all units ready', 20_000);
      // Started is ready for this program: its first line proves its HUP trap is set (the
      // SIGHUP below is forwarded to it too, and would end a shell that has not set it yet).
      await until(() => existsSync(reads) && readFileSync(reads, 'utf8').trim().split('\n').length === 1, 'the first start\'s read');
      s.rotate(rotated);
      const done = next(log, 'refresh: rotated');
      proc.kill('SIGHUP');
      assert.match((await done).message, /reloaded run \(restart\)/);
      await until(() => readFileSync(reads, 'utf8').trim().split('\n').length === 2, 'the second start\'s read');
      const lines = readFileSync(reads, 'utf8').trim().split('\n');
      const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
      assert.equal(lines[0]!.split(' ')[0], sha(pki.server.cert));
      assert.equal(lines[1]!.split(' ')[0], sha(rotated.cert));
      assert.ok(log.find('restarting the child for rotated secrets'));
      assert.equal(log.records.filter((r) => r.severity === 'WARNING' && r.message === 'child exited').length, 0, 'the planned exit is not a warning');
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal((await proc).exitCode, 7, log.text);
    rmSync(reads);
    assert.deepEqual(b.leftovers(), []);
  });

  for (const refresh of [false, true]) {
    test(`run.signals leaves SIGHUP out: the program keeps running${refresh ? ', the SIGHUP still refreshes' : ' (no refresh: a plain run:)'}`, async () => {
      const ready = join(b.dir, `signals-ready-${refresh}`);
      const { proc, log } = b.start(b.config({
        run: { command: ['sh', '-c', `touch ${ready}; while :; do sleep 0.05; done`], signals: ['SIGUSR1'] },
        ...(refresh ? { refresh: { every: '1h' } } : {}),
      }));
      await until(() => existsSync(ready), 'the program to start', 20_000);
      if (refresh) {
        const done = next(log, 'no secret changed');
        proc.kill('SIGHUP');
        await done;
      } else {
        const dropped = next(log, 'SIGHUP not forwarded: run.signals leaves it out');
        proc.kill('SIGHUP');
        await dropped;
      }
      proc.kill('SIGUSR1'); // the one it gets: sh dies of it
      assert.equal((await proc).exitCode, 128 + 10, log.text);
      assert.equal(log.records.some((r) => r.signal === 'SIGHUP' && r.message.startsWith('forwarded')), false, 'SIGHUP never reached it');
      rmSync(ready);
      assert.deepEqual(b.leftovers(), []);
    });
  }

  test('Secret Manager failing for longer than maxStale ends the init with 69, everything wiped', async () => {
    const s = freshSecrets('stale');
    const { proc, log } = b.start(b.config({
      secrets: s.secrets,
      fetch: { deadline: '3s', attemptTimeout: '2s', backoff: { initial: '20ms', max: '200ms' } },
      run: { command: ['sh', '-c', 'while :; do sleep 0.05; done'] },
      refresh: { every: '200ms', jitter: 0, maxStale: '5s' },
    }));
    await log.waitFor('all units ready', 20_000);
    await next(log, 'no secret changed');
    b.world.gcp.fault('sm', { status: 503 });
    try {
      const result = await proc;
      assert.equal(result.exitCode, 69, log.text);
      const error = log.records.find((r) => r.severity === 'ERROR')!;
      assert.match(error.message, /refresh: no good read of the secrets for \d+(\.\d+)?m?s \(refresh.maxStale 5s\): secret \w+ .*still unavailable after the 3s fetch.deadline/);
      assert.ok(log.records.some((r) => r.message.startsWith('refresh failed, nothing changed')), 'failures before that were warnings');
    } finally {
      b.world.gcp.clearFaults('sm');
    }
    assert.deepEqual(b.leftovers(), []);
  });
});

/** An open TLS-PSK session through openssl s_client; ping() false once the handshake failed. */
async function pskSession(port: number, key: string): Promise<{ ping(): Promise<boolean>; close(): void }> {
  const proc = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-psk', key, '-psk_identity', 'Client1', '-tls1_3', '-quiet'], { stdio: ['pipe', 'pipe', 'ignore'] });
  return resp(proc, new Lines(proc.stdout!));
}
