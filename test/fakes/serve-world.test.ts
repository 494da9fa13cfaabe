// serve-world as a person uses it: --help, a fixed --port, the YAML block pasted into a real
// tee-init config, and a rotation by hand through the control endpoint (a new version, then a
// disabled one) that the init picks up on SIGHUP.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { execa } from 'execa';
import { parse } from 'yaml';
import { root, startInit, type LogRecord, type LogTail } from '../helpers/init.ts';
import { freePort } from '../helpers/net.ts';

const script = join(root, 'test', 'fakes', 'serve-world.ts');
const dir = mkdtempSync('/dev/shm/tee-init-serve-world-');
after(() => rmSync(dir, { recursive: true, force: true }));

function next(log: LogTail, text: string, timeoutMs = 20_000): Promise<LogRecord> {
  const from = log.records.length;
  return log.waitFor((r) => log.records.indexOf(r) >= from && r.message.includes(text), timeoutMs);
}

/** Starts serve-world and resolves with what it printed once the whole block is out. */
async function serveWorld(args: string[]) {
  const proc = execa(process.execPath, [script, ...args], { reject: false, stdin: 'ignore' });
  let out = '';
  proc.stdout!.setEncoding('utf8');
  const printed = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (c: string) => {
      out += c;
      if (/^# Identities: .*\n/m.test(out)) resolve(out);
    });
    void proc.then((r) => reject(new Error(`serve-world exited (${r.exitCode}): ${String(r.stderr)}`)));
  });
  return { proc, printed };
}

describe('serve-world', () => {
  test('--help says how to run it and every control route; a bad option is one line and 64', async () => {
    const help = await execa(process.execPath, [script, '--help']);
    assert.match(help.stdout, /npm run serve-world -- \[--port N\]/);
    for (const route of ['GET  /secrets', 'POST /secrets/versions?secret=NAME', 'POST /secrets/state?secret=NAME&version=N&state=S', 'POST /token']) assert.ok(help.stdout.includes(route), route);
    const bad = await execa(process.execPath, [script, '--port', 'eighty'], { reject: false });
    assert.equal(bad.exitCode, 64);
    assert.equal(bad.stderr.trim(), 'serve-world: --port wants a port number (1-65535), got "eighty" (see --help)');
  });

  test('a port in use: one line naming it, 69', async () => {
    const busy = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await execa(process.execPath, [script, '--port', String(port)], { reject: false });
      assert.equal(r.exitCode, 69);
      assert.equal(r.stderr.trim(), `serve-world: cannot listen on 127.0.0.1:${port}: the port is in use: choose another --port`);
    } finally {
      busy.close();
    }
  });

  test('--port, the pasted YAML boots tee-init, and a rotation by hand reaches it on SIGHUP', async () => {
    const port = await freePort();
    writeFileSync(join(dir, 'v1'), 'version one\n');
    const { proc: world, printed } = await serveWorld(['--port', String(port), '--secret', `projects/bob-proj/secrets/greeting=${join(dir, 'v1')}`]);
    try {
      const pasted = parse(printed.slice(0, printed.indexOf('# Serving'))) as Record<string, any>;
      assert.deepEqual(Object.keys(pasted), ['attestation', 'credentials', 'endpoints']);
      assert.equal(pasted.endpoints.sts, `http://127.0.0.1:${port}/v1/token`);
      assert.match(printed, new RegExp(`Google's JWKS +GET +http://127\\.0\\.0\\.1:${port}/oauth2/v3/certs`));
      const control = /control +(http:\/\/127\.0\.0\.1:\d+)\/secrets/.exec(printed)![1]!;

      const out = join(dir, 'out');
      const config = join(dir, 'tee-init.json');
      writeFileSync(config, JSON.stringify({
        ...pasted,
        secrets: { greeting: { source: 'gcp', ref: 'projects/bob-proj/secrets/greeting/versions/latest', credentials: 'bob', file: 'greeting.txt' } },
        output: { dir: out },
        // SIGHUP goes to the program too: this one ignores it (as a program that reloads would not die).
        run: { command: ['sh', '-c', 'trap "" HUP; exec sleep infinity'] },
        refresh: { every: '1h' },
      }));
      const { proc: init, log } = startInit(['--config', config]);
      try {
        await log.waitFor('all units ready', 30_000);
        assert.equal(readFileSync(join(out, 'greeting.txt'), 'utf8'), 'version one\n');

        const added = await fetch(`${control}/secrets/versions?secret=projects/bob-proj/secrets/greeting`, { method: 'POST', body: 'version two\n' });
        assert.deepEqual(await added.json(), { secret: 'projects/bob-proj/secrets/greeting', version: 2 });
        let done = next(log, 'refresh: rotated');
        init.kill('SIGHUP');
        await done;
        assert.equal(readFileSync(join(out, 'greeting.txt'), 'utf8'), 'version two\n');

        const disabled = await fetch(`${control}/secrets/state?secret=projects/bob-proj/secrets/greeting&version=2&state=DISABLED`, { method: 'POST' });
        assert.equal(disabled.status, 200);
        const listed = (await (await fetch(`${control}/secrets`)).json()) as Record<string, { versions: { state: string }[] }>;
        assert.deepEqual(listed['projects/bob-proj/secrets/greeting']!.versions.map((v) => v.state), ['ENABLED', 'DISABLED']);
        done = next(log, 'refresh failed, nothing changed');
        init.kill('SIGHUP');
        assert.match((await done).message, /DISABLED/);
        assert.equal(readFileSync(join(out, 'greeting.txt'), 'utf8'), 'version two\n', 'the files in use stay');

        const unknown = await fetch(`${control}/secrets/state?secret=projects/bob-proj/secrets/greeting&version=9&state=DISABLED`, { method: 'POST' });
        assert.equal(unknown.status, 404);
      } finally {
        init.kill('SIGTERM');
        assert.equal((await init).exitCode, 143, log.text);
      }
    } finally {
      world.kill('SIGINT');
      assert.equal((await world).exitCode, 0);
    }
  });
});
