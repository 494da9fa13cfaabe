import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, parseConfig } from '../../src/config/load.ts';
import { checkEndpointUrl } from '../../src/config/endpoints.ts';
import { InitError } from '../../src/errors.ts';

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
  configErr(psk('{ shares: [s1, s2] }'), /combine must be sha256-concat or hkdf-sha256 \(there is no default\)/);
  configErr(psk('{ shares: [s1, s2], combine: hkdf-sha256, salt: x }'), /hkdf-sha256 needs both salt and info/);
  assert.ok(parseConfig(psk('{ shares: [s1, s2], combine: hkdf-sha256, salt: x, info: y }'), 'x').psk);
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
