import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, parseConfig, problemsOf } from '../../src/config/load.ts';
import { checkEndpointUrl } from '../../src/config/endpoints.ts';
import { checkText } from '../../src/plan/text.ts';
import { InitError } from '../../src/lib/errors.ts';

const DESIGN_EXAMPLE = `
log: { level: info }
attestation:
  waitFor: 30s
  require: { swname: CONFIDENTIAL_SPACE, dbgstat: disabled-since-boot }
credentials:
  alice: { type: confidential-space, provider: projects/111/locations/global/workloadIdentityPools/alice-pool/providers/attestation, serviceAccount: tee-reader@alice-proj.iam.gserviceaccount.com }
  bob: { type: confidential-space, provider: projects/222/locations/global/workloadIdentityPools/bob-pool/providers/attestation }
  dev: { type: adc }
secrets:
  ca:     { source: gcp, ref: projects/alice-proj/secrets/ca/versions/latest, credentials: alice, file: ca.pem }
  cert:   { source: gcp, ref: projects/alice-proj/secrets/server-cert/versions/3, credentials: alice, file: server.crt }
  key:    { source: gcp, ref: projects/alice-proj/secrets/server-key/versions/3, credentials: alice, file: server.key, mode: "0400" }
  share_a: { source: gcp, ref: projects/alice-proj/secrets/alice_psk/versions/latest, credentials: alice }
  share_b: { source: gcp, ref: projects/bob-proj/locations/europe-west4/secrets/bob_psk/versions/latest, credentials: bob }
  devkey: { source: file, path: ./dev-secrets/server.key, file: dev.key }
fetch: { deadline: 60s, concurrency: 16 }
output: { dir: /run/tee-init, owner: redis }
run:
  preset: redis
  with: { tlsPort: 16379 }
  env: { EXTRA: value }
  user: redis
  gracePeriod: 10s
psk:
  mode: server
  listen: 0.0.0.0:8081
  connect: 127.0.0.1:6379
  identities:
    Client1: { shares: [share_a, share_b], combine: sha256-concat }
endpoints:
  sts: https://sts.googleapis.com/v1/token
  teeserver: /run/container_launcher/teeserver.sock
`;

function configErr(text: string, pattern: RegExp) {
  assert.throws(() => parseConfig(text, 'test.yaml'), (e: unknown) => {
    assert.ok(e instanceof InitError, String(e));
    assert.equal(e.exitCode, 78);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n/, 'one line');
    return true;
  });
}

test('the DESIGN.md example parses, with defaults filled in', () => {
  const c = parseConfig(DESIGN_EXAMPLE, 'x');
  assert.equal(c.attestation.waitFor, 30_000);
  assert.equal(c.attestation.tokenFile, '/run/container_launcher/attestation_verifier_claims_token');
  assert.equal(c.secrets.key!.mode, 0o400);
  assert.equal(c.fetch.deadline, 60_000);
  assert.equal(c.run.gracePeriod, 10_000);
  assert.equal(c.endpoints.iamcredentials, 'https://iamcredentials.googleapis.com');
  assert.equal(c.endpoints.secretmanager, undefined);
  assert.equal(c.psk!.identities.Client1!.combine, 'sha256-concat');
});

test('JSON is accepted (a YAML subset)', () => {
  const c = parseConfig('{"run": {"command": ["true"]}, "fetch": {"deadline": "5s"}}', 'x.json');
  assert.deepEqual(c.run.command, ['true']);
  assert.equal(c.fetch.deadline, 5000);
});

test('an empty file is an empty config', () => {
  assert.equal(parseConfig('', 'x').run.preset, 'none');
});

test('errors name the field path and what was expected', () => {
  configErr('secrets: { key: { source: gcp, ref: nope, credentials: a } }', /secrets\.key\.ref: found "nope", must be projects\/P\/secrets\/S\/versions\/V/);
  configErr('secrets: { key: { source: s3, path: x } }', /secrets\.key\.source|secrets\.key: source must be "gcp" or "file"/);
  configErr('fetch: { deadline: soon }', /fetch\.deadline: "soon" is not a duration/);
  configErr('fetch: { concurency: 3 }', /fetch: unknown field "concurency"/);
  configErr('bogus: 1', /unknown field "bogus"/);
  configErr('secrets: { key: { source: file, path: x, file: ../x } }', /secrets\.key\.file: found "\.\.\/x", write a plain file name/);
  configErr('secrets: { key: { source: file, path: x, file: ..data } }', /secrets\.key\.file: found "\.\.data", .*not starting with "\.\." \(reserved for \.\.data\)/);
  configErr('run: { command: [x], files: [{ name: ..2026_x, template: y }] }', /run\.files\.0\.name|run\.files\[0\]\.name/);
  configErr('secrets: { key: { source: file, path: x, file: k, mode: "0666" } }', /secrets\.key\.mode: .*writable by nobody else/);
  configErr('credentials: { a: { type: confidential-space, provider: pools/x } }', /credentials\.a\.provider: found "pools\/x", must be projects\/NUMBER/);
  configErr('log: { level: loud }', /log\.level/);
  configErr('key: [unclosed', /is not valid YAML\/JSON/);
  configErr('a: 1\na: 2', /line 2, column 1 is not valid YAML\/JSON: Map keys must be unique/);
});

test('cross-references are checked', () => {
  configErr('secrets: { x: { source: gcp, ref: projects/p/secrets/s/versions/1, credentials: nobody } }', /secrets\.x\.credentials: found "nobody", but no credentials have that name: write one of \(none are defined/);
  configErr('secrets: { a: { source: file, path: x, file: f }, b: { source: file, path: y, file: f } }', /secrets\.b\.file: "f" is also the file of secrets\.a/);
  configErr('secrets: { a: { source: file, path: x, mode: "0400" } }', /secrets\.a\.mode: a mode needs a file/);
  const psk = (ident: string) => `secrets: { s1: { source: file, path: x }, s2: { source: file, path: y } }\npsk: { mode: server, listen: "0.0.0.0:1", connect: "127.0.0.1:2", identities: { C: ${ident} } }`;
  configErr(psk('{ shares: [s1, s3], combine: sha256-concat }'), /psk\.identities\.C\.shares\[1\]: found "s3", but no secret has that name/);
  configErr(psk('{ shares: [s1, s2] }'), /combine must be sha256-concat, hkdf-sha256 or shamir \(there is no default\)/);
  configErr(psk('{ shares: [s1, s2], combine: hkdf-sha256, salt: x }'), /hkdf-sha256 needs both salt and info/);
  assert.ok(parseConfig(psk('{ shares: [s1, s2], combine: hkdf-sha256, salt: x, info: y }'), 'x').psk);
  // combine: shamir (t of n)
  const shamir = (extra: string) => psk(`{ shares: [s1, s2], combine: shamir, salt: x, info: y${extra} }`);
  assert.equal(parseConfig(shamir(`, threshold: 2, verify: "sha256:${'ab'.repeat(32)}"`), 'x').psk!.identities.C!.threshold, 2);
  configErr(shamir(''), /psk\.identities\.C: shamir needs threshold: how many of its 2 shares give the key/);
  configErr(shamir(', threshold: 3'), /psk\.identities\.C\.threshold: threshold 3 is more than the 2 shares listed/);
  configErr(shamir(', threshold: 1'), /psk\.identities\.C\.threshold: .*at least 2/);
  configErr(shamir(', threshold: 2, verify: "sha256:abc"'), /psk\.identities\.C\.verify: .*sha256: and 64 hex digits/);
  configErr(psk('{ shares: [s1, s1], combine: shamir, threshold: 2, salt: x, info: y }'), /psk\.identities\.C\.shares\[1\]: "s1" is listed twice/);
  configErr(psk('{ shares: [s1, s2], combine: shamir, threshold: 2 }'), /shamir needs both salt and info/);
  configErr(psk('{ shares: [s1, s2], combine: hkdf-sha256, salt: x, info: y, threshold: 2 }'), /psk\.identities\.C\.threshold: threshold applies to combine: shamir only/);
});

test('modes: strings, and unquoted YAML numbers read as the octal they look like', () => {
  const mode = (m: string) => parseConfig(`secrets: { a: { source: file, path: x, file: f, mode: ${m} } }`, 'x').secrets.a!.mode;
  assert.equal(mode('"0400"'), 0o400);
  assert.equal(mode('0440'), 0o440);
  assert.equal(mode('"0o644"'), 0o644);
  assert.equal(mode('600'), 0o600);
  configErr('secrets: { a: { source: file, path: x, file: f, mode: 0200 } }', /readable by its owner/);
  configErr('secrets: { a: { source: file, path: x, file: f, mode: "4755" } }', /writable by nobody else/);
});

test('plain http only to loopback', () => {
  assert.equal(checkEndpointUrl('https://sts.googleapis.com/v1/token'), undefined);
  for (const ok of ['http://127.0.0.1:8080', 'http://localhost:1/v1/token', 'http://[::1]:9', 'http://127.9.9.9']) assert.equal(checkEndpointUrl(ok), undefined, ok);
  for (const bad of ['http://10.0.0.1', 'http://sts.googleapis.com', 'http://127.0.0.1.evil.com', 'ftp://x', 'not a url']) assert.ok(checkEndpointUrl(bad), bad);
  configErr('endpoints: { sts: "http://sts.example.com/v1/token" }', /endpoints\.sts: endpoints\.sts "http:\/\/sts\.example\.com\/v1\/token": plain http is allowed only to loopback/);
});

test('loadConfig: relative file paths are resolved against the config directory; a missing file is 78', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-cfg-'));
  try {
    writeFileSync(join(dir, 'c.yaml'), 'secrets: { a: { source: file, path: ./s/a.pem }, b: { source: file, path: /abs/b } }');
    const { config, dir: cdir } = loadConfig(join(dir, 'c.yaml'));
    assert.equal(cdir, dir);
    assert.equal((config.secrets.a as { path: string }).path, join(dir, 's', 'a.pem'));
    assert.equal((config.secrets.b as { path: string }).path, '/abs/b');
    assert.throws(() => loadConfig(join(dir, 'missing.yaml')), /config file .*missing\.yaml does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('messages in our words: field, what was found, what to write; never zod\'s', () => {
  const problems = (text: string) => {
    try {
      parseConfig(text, 't.yaml');
    } catch (e) {
      return problemsOf(e).map((p) => p.replace(/^config t\.yaml: /, ''));
    }
    assert.fail('accepted');
  };
  assert.deepEqual(problems('run: { env: { CA-FILE: x } }'), ['run.env: found the key "CA-FILE", which is not an environment variable name: use letters, digits and _, not starting with a digit (e.g. CA_FILE)']);
  assert.deepEqual(problems('psk: { mode: server, listen: 8081, connect: "127.0.0.1:1", identities: { a: { shares: [s], combine: sha256-concat } } }').slice(0, 1), [
    'psk.listen: found the number 8081, write HOST:PORT, e.g. "0.0.0.0:8443" (quoted)',
  ]);
  // YAML 1.2 reads 0o400 as 256: it must be read as the mode that was written.
  assert.equal(parseConfig('secrets: { a: { source: file, path: x, file: f, mode: 0o400 } }', 'x').secrets.a!.mode, 0o400);
  assert.deepEqual(problems('secrets: { a: { source: file, path: x, file: f, mode: 0o666 } }'), [
    'secrets.a.mode: found "0o666", but a secret file must be readable by its owner and writable by nobody else: write e.g. "0400" or "0440"',
  ]);
  assert.deepEqual(problems('secrets: { a: { source: file, path: x, file: f, mode: 256 } }'), [
    'secrets.a.mode: found the number 256, read as the octal mode 0256, but a secret file must be readable by its owner and writable by nobody else: write e.g. "0400" or "0440"',
  ]);
  assert.deepEqual(problems('fetch: { concurrency: 0x10 }'), ['fetch.concurrency: found "0x10", write a number']);
  assert.deepEqual(problems('secrets: { k: { source: gcp, ref: projects/p/secrets/s/versions/1, credential: a } }'), [
    'secrets.k: unknown field "credential" (did you mean "credentials"?): remove it or fix the spelling',
    'secrets.k.credentials: missing: add it (text)',
  ]);
  assert.deepEqual(problems('log: { level: verbose }\nrun: { command: [] }'), [
    'log.level: found "verbose", write one of "trace", "debug", "info", "warn", "error"',
    'run.command: found an empty list, write at least 1 item',
  ]);
  assert.deepEqual(problems('run: { env: { A: [x] } }'), ['run.env.A: found a list of 1, write text']);
  assert.deepEqual(problems('credentials: { a: { type: confidential } }'), ['credentials.a.type: found "confidential", type must be "confidential-space" or "adc"']);
  // Every line of every case above: none of zod's phrasings.
  for (const text of ['run: { env: { CA-FILE: x } }', 'fetch: { concurrency: 1.5 }', 'fetch: 3', 'secrets: { "a b": { source: file, path: x } }', 'psk: { mode: x }']) {
    for (const p of problems(text)) assert.doesNotMatch(p, /Invalid input|Invalid key|Too small|Too big|expected \w+, received|Unrecognized key/, p);
  }
  assert.equal(parseConfig('run: { command: [x], env: { PORT: 8080, ON: true } }', 'x').run.env.PORT, '8080', 'numbers in env are text');
});

test('YAML oddities: tags, anchors, deep nesting, huge and non-regular config files', () => {
  configErr('run: { command: [x], with: !!set { a } }', /run\.with: found a set \(!!set\), write plain text, numbers/);
  configErr('run: { command: !!binary aGVsbG8= }', /run\.command: found binary data \(!!binary\)/);
  configErr('run: { command: [!foo x] }', /is not valid YAML\/JSON: Unresolved tag: !foo/);
  configErr(`run: { command: [x], with: { a: ${'['.repeat(40)}${']'.repeat(40)} } }`, /nested more than 32 levels deep: flatten it/);
  configErr('a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]', /is not valid YAML\/JSON: Excessive alias count/);
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-cfg-'));
  try {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(1024 * 1024)}\n`);
    assert.throws(() => loadConfig(big), /config file .*big\.yaml is larger than 1024 KiB/);
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    assert.throws(() => loadConfig(join(dir, 'fifo')), /config file .*fifo is not a regular file: check --config/, 'a FIFO with no writer does not block');
    assert.throws(() => loadConfig(dir), /is a directory, not a file/);
    assert.throws(() => loadConfig('/dev/zero'), /is not a regular file/);
    writeFileSync(join(dir, 'latin1.yaml'), Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
    assert.throws(() => loadConfig(join(dir, 'latin1.yaml')), /is not UTF-8 text/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check in-process: both users wrong gives two problems; --etc resolves an image\'s users', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-cfg-'));
  try {
    const path = join(dir, 'c.yaml');
    writeFileSync(path, 'run: { command: [x], user: "no-such-user" }\noutput: { owner: "1:4294967295" }\n');
    await assert.rejects(checkText(path), (e: unknown) => {
      assert.deepEqual(problemsOf(e).map((p) => p.replace(/^config \S+: /, '').replace(/:.*/, '')), ['run.user', 'output.owner']);
      return true;
    });
    writeFileSync(path, 'run: { command: [x], user: envoy }\n');
    assert.match(await checkText(path, { etc: join(import.meta.dirname, '..', 'fixtures', 'image-etc') }), /as user envoy \(uid 101, gid 101 in /);
    await assert.rejects(checkText(path, { etc: dir }), (e: unknown) => {
      assert.match(problemsOf(e)[0]!, /--etc \S+: there is no passwd file in it: give the image's \/etc directory$/);
      return true;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
