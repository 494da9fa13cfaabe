// Secret bytes and tokens never reach the output: a full boot at trace level, and boots that
// fail in the ways that log the most, with everything the init and its child printed scanned
// for every secret (raw, trimmed, base64, hex) and for every token.
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { node, runInit, startInit } from '../helpers/init.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, type Pki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';
import { until } from '../helpers/lines.ts';

// The child prints its whole argv and environment, so they are scanned too.
const CHILD = `console.log(JSON.stringify({ argv: process.argv, env: process.env }))`;

function needles(b: Boot, token: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, v] of Object.entries(b.values)) {
    const trimmed = v.toString('utf8').trim();
    out.set(`${name} (raw)`, trimmed);
    out.set(`${name} (base64)`, v.toString('base64').replace(/=+$/, ''));
    out.set(`${name} (hex)`, Buffer.from(trimmed).toString('hex'));
    // PEM: every full base64 line of the body on its own (a log could carry a fragment).
    trimmed.split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l)).forEach((l, i) => out.set(`${name} (PEM line ${i + 1})`, l));
  }
  out.set('attestation token', token);
  out.set('attestation token signature', token.split('.')[2]!);
  out.set('an access token', 'ya29.');
  return out;
}

function scan(text: string, found: Map<string, string>): string[] {
  return [...found].filter(([, needle]) => text.includes(needle)).map(([what]) => what);
}

describe('no secret in any output', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  test('a successful boot at trace level: init log, child argv and env', async () => {
    const config = b.config({ log: { level: 'trace' }, run: { command: [node, '-e', CHILD, '--', '{{secrets.key.path}}'], env: { KEY: '{{secrets.key.path}}' } } });
    const { proc, log } = b.start(config, ['--log-level', 'trace']);
    const initPid = proc.pid!;
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.ok(log.records.some((r) => r.severity === 'DEBUG'), 'trace/debug records were written');
    const token = readFileSync(b.world.tokenFile, 'utf8').trim();
    const text = `${result.stdout}\n${result.stderr}`;
    assert.deepEqual(scan(text, needles(b, token)), []);
    // The init's own argv never carried one either (it is gone now; check what we started).
    assert.doesNotMatch(JSON.stringify(result.command), /ya29\.|-----BEGIN/);
    assert.ok(initPid > 0);
  });

  test('several processes (and a oneshot) at trace level: no secret anywhere, the directory wiped', async () => {
    const config = b.config({
      log: { level: 'trace' },
      fetch: { deadline: '60s', attemptTimeout: '10s', backoff: { initial: '20ms', max: '200ms' } },
      processes: {
        setup: { command: [node, '-e', CHILD, '--', '{{secrets.key.path}}'], oneshot: true, env: { CERT: '{{secrets.cert.path}}' } },
        server: { command: [node, '-e', `${CHILD}; setTimeout(() => {}, 200)`, '--', '{{secrets.ca.path}}'], after: ['setup'], env: { KEY: '{{secrets.key.path}}' } },
      },
    });
    delete (config as Record<string, unknown>).run;
    const { proc, log } = b.start(config, ['--log-level', 'trace']);
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.ok(log.find('setup exited') && log.find('server exited'));
    const token = readFileSync(b.world.tokenFile, 'utf8').trim();
    assert.deepEqual(scan(`${result.stdout}\n${result.stderr}`, needles(b, token)), []);
    assert.deepEqual(b.leftovers(), [], 'the output directory is wiped after several processes too');
  });

  test('rotations at trace level (a good one, a refused one, a restart): no old or new secret anywhere', async () => {
    const fresh = { key: Buffer.from(`rotated-key-${Math.random().toString(36).slice(2)}`), ca: Buffer.from(`rotated-ca-${Math.random().toString(36).slice(2)}`) };
    const config = b.config({
      log: { level: 'trace' },
      run: { command: [node, '-e', `process.on('SIGHUP', () => {}); ${CHILD}; setInterval(() => {}, 1000)`, '--', '{{secrets.key.path}}'], env: { CA: '{{secrets.ca.path}}' }, reload: 'restart' },
      refresh: { every: '1h' },
    });
    const { proc, log } = b.start(config, ['--log-level', 'trace']);
    // The child ignores SIGHUP, then prints: once it printed, a SIGHUP is safe.
    let printed = 0;
    proc.stdout!.on('data', (d: Buffer) => (printed += d.toString().split('\n').length - 1));
    try {
      await until(() => printed >= 1, 'the child\'s first line', 20_000);
      b.world.addVersion('projects/alice-proj/secrets/server-key', fresh.key);
      b.world.addVersion('projects/bob-proj/secrets/ca', fresh.ca);
      let from = log.records.length;
      proc.kill('SIGHUP');
      await log.waitFor((r) => log.records.indexOf(r) >= from && r.message.startsWith('refresh: rotated'), 20_000);
      await until(() => printed >= 2, 'the restarted child\'s line', 20_000);
      b.world.addVersion('projects/alice-proj/secrets/server-key', Buffer.from('refused-key-bytes-xyz'));
      b.world.gcp.fault('sm', { corruptCrc: true }, { secret: 'projects/alice-proj/secrets/server-key' });
      from = log.records.length;
      proc.kill('SIGHUP');
      await log.waitFor((r) => log.records.indexOf(r) >= from && r.message.startsWith('refresh failed'), 20_000);
    } finally {
      b.world.gcp.clearFaults('sm');
      proc.kill('SIGTERM');
    }
    const result = await proc;
    const token = readFileSync(b.world.tokenFile, 'utf8').trim();
    const found = needles(b, token);
    for (const [name, v] of [...Object.entries(fresh), ['refused', Buffer.from('refused-key-bytes-xyz')] as const]) {
      found.set(`${name} after rotation (raw)`, v.toString());
      found.set(`${name} after rotation (base64)`, v.toString('base64').replace(/=+$/, ''));
    }
    assert.equal(JSON.parse(result.stdout.split('\n')[1]!).argv.length > 0, true, 'the restarted child printed too');
    assert.deepEqual(scan(`${result.stdout}\n${result.stderr}`, found), []);
    assert.deepEqual(b.leftovers(), []);
  });

  test('failing boots log no secret either', async () => {
    const token = readFileSync(b.world.tokenFile, 'utf8').trim();
    const cases: [string, () => void][] = [
      ['CRC mismatch', () => b.world.gcp.fault('sm', { corruptCrc: true }, { secret: 'projects/alice-proj/secrets/server-key' })],
      ['permission denied', () => b.world.gcp.fault('sm', { status: 403 }, { secret: 'projects/bob-proj/secrets/ca' })],
      ['STS refuses', () => b.world.gcp.fault('sts', { status: 400, body: { error: 'invalid_grant', error_description: 'condition not met' } })],
      ['unavailable', () => b.world.gcp.fault('sm', { status: 503 })],
    ];
    for (const [what, inject] of cases) {
      b.world.gcp.clearFaults();
      inject();
      const config = b.config({ log: { level: 'trace' } });
      (config.fetch as Record<string, unknown>).deadline = '500ms';
      const { proc } = b.start(config, ['--log-level', 'trace']);
      const result = await proc;
      assert.notEqual(result.exitCode, 0, what);
      assert.deepEqual(scan(`${result.stdout}\n${result.stderr}`, needles(b, token)), [], what);
    }
    b.world.gcp.clearFaults();
  });

  test('check --show and check\'s problem lines: paths and config text only, never a secret', async () => {
    const token = readFileSync(b.world.tokenFile, 'utf8').trim();
    const keyFile = join(b.dir, 'local-key');
    writeFileSync(keyFile, b.values.key!);
    const config = b.config({
      run: {
        command: [node, '-e', CHILD, '{{secrets.key.path}}', '{{secrets.local.path}}'],
        env: { KEY: '{{secrets.local.path}}' },
        files: [{ name: 'app.conf', template: 'key={{secrets.local.path}}\nca={{secrets.ca.path}}\n', format: 'text' }],
      },
    });
    (config.secrets as Record<string, unknown>).local = { source: 'file', path: keyFile, file: 'local.key' };
    const shown = await runInit(['check', '--show', '--config', b.writeConfig(config)], { env: { SOME_TOKEN: token } });
    assert.equal(shown.code, 0, shown.result.stderr as string);
    assert.match(shown.result.stdout as string, /key=.*local\.key/);
    (config.secrets as Record<string, Record<string, unknown>>).local!.mode = '0666';
    const refused = await runInit(['check', '--show', '--config', b.writeConfig(config)]);
    assert.equal(refused.code, 78);
    for (const r of [shown.result, refused.result]) assert.deepEqual(scan(`${r.stdout}\n${r.stderr}`, needles(b, token)), []);
  });
});

describe('no key bytes when PEM checks or file sources refuse a secret', () => {
  test('mismatched, cut-off or oversized key material at trace level', async () => {
    const dir = mkdtempSync('/dev/shm/tee-init-leak-pem-');
    try {
      const pki = createPki(join(dir, 'pki'));
      const key = readFileSync(pki.server.key, 'utf8');
      // Every base64 line of the key body, and the body as one string: none may be printed.
      const body = key.split('\n').filter((l) => l && !l.startsWith('-----'));
      const keyNeedles = new Map(body.map((l, i) => [`server key line ${i}`, l]));
      keyNeedles.set('server key body', body.join(''));
      const cut = join(dir, 'cut.key');
      writeFileSync(cut, key.replace(/-----END [A-Z ]+-----\s*$/, ''));
      const big = join(dir, 'big.key');
      writeFileSync(big, key.repeat(400));
      const cases: [string, string, string][] = [
        ['a CA as server cert with an unrelated key', pki.ca.cert, pki.server.key],
        ['a key cut before its END line', pki.server.cert, cut],
        ['a key file over 64 KiB', pki.server.cert, big],
      ];
      for (const [what, cert, keyPath] of cases) {
        const config = join(dir, 'config.json');
        writeFileSync(config, JSON.stringify({
          log: { level: 'trace' },
          secrets: { cert: { source: 'file', path: cert, file: 'server.crt' }, key: { source: 'file', path: keyPath, file: 'server.key' } },
          output: { dir: join(dir, 'out') },
          run: { command: ['true'] },
        }));
        const { proc } = startInit(['--config', config, '--log-level', 'trace']);
        const result = await proc;
        assert.equal(result.exitCode, 65, `${what}: ${result.stderr}`);
        assert.deepEqual(scan(`${result.stdout}\n${result.stderr}`, keyNeedles), [], what);
        const check = await startInit(['check', '--config', config]).proc;
        assert.deepEqual(scan(`${check.stdout}\n${check.stderr}`, keyNeedles), [], `${what} (check)`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('no secret in the output of a tls listener', () => {
  let b: Boot;
  let pki: Pki;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tee-init-leak-tls-'));
    pki = createPki(dir);
    b = await boot({ pem: { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) } });
  });
  after(async () => {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('trace level, accepted, refused and plaintext clients, XFCC and Client-Cert set: no key, cert or CA bytes logged', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const [listen, backend] = [await freePort(), await freePort()];
    const server = `require('http').createServer((q, s) => s.end(JSON.stringify(q.headers))).listen(${backend}, '127.0.0.1')`;
    const config = b.config({
      log: { level: 'trace' },
      run: { command: [node, '-e', server] },
      listeners: {
        mesh: {
          type: 'tls', mode: 'permissive', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${backend}`,
          tls: { cert: 'cert', key: 'key', ca: 'ca' }, http: { clientCert: true },
        },
      },
    });
    const { proc, log } = b.start(config, ['--log-level', 'trace']);
    await log.waitFor('tls proxy listening', 15_000);
    const https = ['-sS', '--noproxy', '*', '--cacert', pki.ca.cert, `https://127.0.0.1:${listen}/`];
    const ok = await execa('curl', ['--cert', pki.client.cert, '--key', pki.client.key, ...https], { reject: false });
    assert.match(ok.stdout, /x-forwarded-client-cert/);
    await execa('curl', https, { reject: false }); // refused: no certificate
    await execa('curl', ['-sS', '--noproxy', '*', `http://127.0.0.1:${listen}/`], { reject: false }); // plaintext
    await log.waitFor('tls client refused');
    proc.kill('SIGTERM');
    const result = await proc;
    const token = readFileSync(b.world.tokenFile, 'utf8').trim();
    assert.deepEqual(scan(`${result.stdout}\n${result.stderr}`, needles(b, token)), []);
  });
});
