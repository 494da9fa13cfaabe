// `tee-init check --config FILE`: validates and prints the plan; reads no token, contacts nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { root, runInit } from '../helpers/init.ts';

const imageEtc = join(root, 'test', 'fixtures', 'image-etc');
const problemLines = (stderr: unknown) => (stderr as string).trim().split('\n');

describe('tee-init check', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  test('prints the plan: sources, identities, files with modes, the rendered command; touches nothing', async () => {
    const config = b.config({
      attestation: { tokenFile: join(b.dir, 'no-token-here'), require: { dbgstat: 'disabled-since-boot' } },
      run: { command: ['server', '--cert', '{{secrets.cert.path}}'], env: { CA: '{{secrets.ca.path}}' }, user: 'nobody' },
    });
    b.world.gcp.requests.length = 0;
    const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
    assert.equal(code, 0, result.stderr as string);
    const out = result.stdout as string;
    assert.match(out, /^config .*: OK$/m);
    assert.match(out, /require dbgstat = "disabled-since-boot"/);
    assert.match(out, /alice \(projects\/111\/.*alice-pool\/providers\/attestation, as tee-reader@alice-proj\.iam\.gserviceaccount\.com\)/);
    assert.match(out, new RegExp(`key +projects/alice-proj/secrets/server-key/versions/latest as alice -> ${b.outDir}/server\\.key 0400`));
    assert.match(out, new RegExp(`cert +.* -> ${b.outDir}/server\\.crt 0440`));
    assert.match(out, /share_a +projects\/alice-proj\/secrets\/alice_psk\/versions\/latest as alice -> memory only \(not referenced by run or a listener\)$/m);
    assert.match(out, /cert +.* 0440$/m, 'referenced by run.command');
    assert.match(out, /ca +.* 0400$/m, 'referenced by run.env');
    assert.match(out, new RegExp(`run +server --cert ${b.outDir}/server\\.crt`));
    assert.match(out, new RegExp(`env CA=${b.outDir}/ca\\.pem`));
    assert.match(out, /as user nobody/);
    // `server` is no program of this machine: check says so, as a warning (the image may have it).
    assert.match(result.stderr as string, /^tee-init check: warning: run\.command: "server" is not found as uid 65534 on PATH=[^\n]*\n?$/);
    assert.deepEqual(b.world.gcp.requests, [], 'nothing contacted');
    assert.deepEqual(b.leftovers(), [], 'nothing created');
  });

  test('a bad config: one line on stderr naming the field, exit 78', async () => {
    const config = b.config();
    (config.secrets as Record<string, Record<string, unknown>>).key!.mode = '0666';
    const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
    assert.equal(code, 78);
    const lines = (result.stderr as string).trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^tee-init check: config .*: secrets\.key\.mode: found "0666", but a secret file must be readable by its owner and writable by nobody else: write e\.g\. "0400"/);
    assert.equal(result.stdout, '');
  });

  test('a preset whose secrets are missing is a config error in check too', async () => {
    const config = b.config({ secrets: {}, run: { preset: 'redis' } });
    const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
    assert.equal(code, 78);
    assert.match(result.stderr as string, /run\.preset: the redis preset needs secret "ca"/);
  });

  test('every example config checks', async () => {
    const dirs = readdirSync(join(root, 'examples'), { withFileTypes: true }).filter((d) => d.isDirectory());
    assert.ok(dirs.length >= 5);
    for (const d of dirs) {
      // The envoy examples run as the image's envoy user: checked against an image-like /etc.
      const { result, code } = await runInit(['check', '--etc', imageEtc, '--config', localExample(d.name) ?? join(root, 'examples', d.name, 'tee-init.yaml')]);
      assert.equal(code, 0, `${d.name}: ${result.stderr}`);
    }
  });

  test('every problem, one line each, the unknown field before the missing field it causes', async () => {
    const config = b.config({ fetch: { concurrency: 0, attemptTimeout: '1000h' } });
    const key = (config.secrets as Record<string, Record<string, unknown>>).key!;
    key.credential = key.credentials;
    delete key.credentials;
    const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
    assert.equal(code, 78);
    const lines = problemLines(result.stderr);
    assert.equal(lines.length, 4, lines.join('\n'));
    for (const l of lines) assert.match(l, /^tee-init check: config \/\S+: /);
    assert.match(lines[0]!, /secrets\.key: unknown field "credential" \(did you mean "credentials"\?\): remove it or fix the spelling$/);
    assert.match(lines[1]!, /secrets\.key\.credentials: missing: add it \(text\)$/);
    assert.match(lines[2]!, /fetch\.attemptTimeout: "1000h" is longer than the longest timer Node\.js can run .*: write at most 596h$/);
    assert.match(lines[3]!, /fetch\.concurrency: found the number 0, write a number at least 1$/);
    assert.equal(result.stdout, '');
  });

  test('users: a missing user or group, an id out of range; checked against --etc DIR when given', async () => {
    const cases: [Record<string, unknown>, Record<string, unknown>, RegExp][] = [
      [{ user: 'no-such-user-here' }, {}, /run\.user: found "no-such-user-here", but there is no such user in \/etc\/passwd/],
      [{ user: 'root:no-such-group' }, {}, /run\.user: found "no-such-group", but there is no such group in \/etc\/group/],
      [{ user: '4294967295' }, {}, /run\.user: uid 4294967295 in "4294967295" is out of range: write a uid from 0 to 2147483647/],
      [{ user: '2147483648' }, {}, /run\.user: uid 2147483648 .* out of range/],
      [{}, { owner: '4294967296:1' }, /output\.owner: uid 4294967296 in "4294967296:1" is out of range: write a uid from 0 to 4294967294/],
      [{}, { owner: '1:4294967295' }, /output\.owner: gid 4294967295 .* out of range/],
      [{}, { owner: 'no-such-owner' }, /output\.owner: found "no-such-owner", but there is no such user/],
    ];
    for (const [run, output, pattern] of cases) {
      const config = b.config();
      Object.assign(config.run as object, run);
      Object.assign(config.output as object, output);
      const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
      assert.equal(code, 78, JSON.stringify({ run, output }));
      const lines = problemLines(result.stderr);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, pattern);
    }
    const envoy = b.config({ run: { command: ['x'], user: 'envoy' }, output: { dir: b.outDir, owner: 'envoy:envoy' } });
    const path = b.writeConfig(envoy);
    assert.equal((await runInit(['check', '--config', path])).code, 78, 'no envoy user on this machine');
    const { result, code } = await runInit(['check', '--etc', imageEtc, '--config', path]);
    assert.equal(code, 0, result.stderr as string);
    assert.match(result.stdout as string, new RegExp(`as user envoy \\(uid 101, gid 101 in ${imageEtc}\\)`));
    assert.match(result.stdout as string, /owner 101:101/);
  });

  test('an output directory that exists and is not tmpfs, is not a directory, or has no parent', async () => {
    const disk = mkdtempSync(join(root, '.tee-init-not-tmpfs-'));
    try {
      const config = b.config({ output: { dir: disk } });
      const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
      assert.equal(code, 78);
      assert.match(problemLines(result.stderr)[0]!, new RegExp(`output\\.dir ${disk} is not on tmpfs \\(filesystem type 0x[0-9a-f]+\\): secrets must not touch a disk`));
      const allowed = b.config({ output: { dir: disk, allowNonTmpfs: true } });
      assert.equal((await runInit(['check', '--config', b.writeConfig(allowed)])).code, 0);
      assert.deepEqual(readdirSync(disk), [], 'check created nothing');
      const orphan = await runInit(['check', '--config', b.writeConfig(b.config({ output: { dir: join(b.dir, 'no-parent', 'out') } }))]);
      assert.equal(orphan.code, 78);
      assert.match(problemLines(orphan.result.stderr)[0]!, /output\.dir .*\/no-parent\/out: its parent .*\/no-parent does not exist/);
      const file = b.writeConfig(b.config({ output: { dir: join(root, 'package.json') } }));
      assert.match(problemLines((await runInit(['check', '--config', file])).result.stderr)[0]!, /package\.json exists and is not a directory/);
    } finally {
      rmSync(disk, { recursive: true, force: true });
    }
  });

  test('COMMAND: replaces run.command in the plan; with a preset it is refused as the boot would', async () => {
    const plain = b.writeConfig(b.config());
    const ok = await runInit(['check', '--config', plain, '--', 'my-server', '--port', '1']);
    assert.equal(ok.code, 0, ok.result.stderr as string);
    assert.match(ok.result.stdout as string, /^run +my-server --port 1$/m);
    const preset = b.writeConfig(b.config({ run: { preset: 'redis' } }));
    const { result, code } = await runInit(['check', '--config', preset, 'redis-server']);
    assert.equal(code, 78);
    assert.match(problemLines(result.stderr)[0]!, /COMMAND was given on the command line, but run\.preset redis builds the command itself/);
  });

  test('a program name longer than a path can be (ENAMETOOLONG) is caught by check', async () => {
    const config = b.config({ run: { command: ['x'.repeat(70_000)] } });
    const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
    assert.equal(code, 78);
    assert.match(problemLines(result.stderr)[0]!, /run\.command\[0\]: the program name is 70000 bytes; a path holds at most 4095 bytes/);
  });

  test('--show: the rendered argv, env and every rendered file with path, mode and content', async () => {
    const config = b.config({
      refresh: { every: '1h' },
      run: {
        preset: 'redis',
        env: { GREETING: 'hello {{output.dir}}' },
        files: [{ name: 'app.json', template: { ca: '{{secrets.ca.path}}', port: 1 }, format: 'json', mode: '0440' }],
      },
    });
    const { result, code } = await runInit(['check', '--show', '--config', b.writeConfig(config)], { env: { INHERITED_SECRET: 'do-not-print-me' } });
    assert.equal(code, 0, result.stderr as string);
    const out = result.stdout as string;
    const shown = out.slice(out.indexOf('# what the program gets (--show)'));
    assert.match(shown, /^run:\n {2}preset: redis\n {2}argv:\n {4}- redis-server\n/m);
    // With refresh:, the plan says how rotated certificates reach redis (the preset's reload), with the real paths.
    assert.match(out, new RegExp(`^ +on rotation: run redis-cli -e -s ${b.outDir}/redis\\.sock CONFIG SET tls-cert-file ${b.outDir}/server\\.crt .* \\(must exit 0 within 10s\\); when ca, cert, key change$`, 'm'));
    assert.match(shown, new RegExp(`--tls-cert-file\\n {4}- ${b.outDir}/server\\.crt`));
    assert.match(shown, new RegExp(`GREETING: hello ${b.outDir}`));
    assert.match(shown, new RegExp(`path: ${b.outDir}/app\\.json\\n {4}mode: "0440"\\n {4}content: \\|`));
    assert.match(shown, new RegExp(`"ca": "${b.outDir}/ca\\.pem"`));
    assert.doesNotMatch(out, /do-not-print-me|INHERITED_SECRET/);
    assert.deepEqual(b.leftovers(), []);
  });
  /** examples/local reads files its script makes: check it in a copy where they exist (check opens them). */
  const localCopies: string[] = [];
  after(() => {
    for (const c of localCopies) rmSync(c, { recursive: true, force: true });
  });
  function localExample(name: string): string | undefined {
    if (name !== 'local') return undefined;
    // Its own directory, not the boot's (whose leftovers other tests check).
    const copy = mkdtempSync(join(tmpdir(), 'tee-init-local-example-'));
    localCopies.push(copy);
    for (const f of ['tee-init.yaml', 'make-dev-secrets.sh']) copyFileSync(join(root, 'examples', 'local', f), join(copy, f));
    execFileSync('sh', [join(copy, 'make-dev-secrets.sh')], { stdio: 'ignore' });
    return join(copy, 'tee-init.yaml');
  }


  test('a program not on PATH is a warning on stderr (exit 0: the image may have it); one on PATH is not', async () => {
    const missing = await runInit(['check', '--config', b.writeConfig(b.config({ run: { command: ['no-such-program-tee-init', '--x'] } }))]);
    assert.equal(missing.code, 0, missing.result.stderr as string);
    assert.match(missing.result.stderr as string, /^tee-init check: warning: run\.command: "no-such-program-tee-init" is not found as the init's user on PATH=/m);
    const present = await runInit(['check', '--config', b.writeConfig(b.config({ run: { command: ['sh', '-c', 'true'] } }))]);
    assert.equal(present.code, 0);
    assert.doesNotMatch(present.result.stderr as string, /warning/);
  });


  test('a listener with attest: and a client with verify.attestation say so in the plan', async () => {
    const tls = { cert: 'cert', key: 'key', ca: 'ca' };
    const config = b.config({
      listeners: {
        db: { type: 'tls', mode: 'strict', listen: '127.0.0.1:16380', connect: '127.0.0.1:6379', tls, attest: { audience: 'https://db.example/a' } },
        out: { type: 'tls', mode: 'client', listen: '127.0.0.1:16381', connect: 'db.example:6380', tls: { ...tls, serverName: 'db.example' }, verify: { attestation: { audience: 'https://db.example/a' } } },
      },
    });
    const { result, code } = await runInit(['check', '--config', b.writeConfig(config)]);
    assert.equal(code, 0, result.stderr as string);
    assert.match(result.stdout as string, /db: tls strict, listen 127\.0\.0\.1:16380 -> 127\.0\.0\.1:6379 \(secrets [^)]*\), attests to https:\/\/db\.example\/a$/m);
    assert.match(result.stdout as string, /out: tls client, .*, verifies the server's attestation for https:\/\/db\.example\/a$/m);
  });
});
