// `listeners:` in the config: each entry checked by its type's schema from the listener table,
// the `psk:` shorthand, and the cross-references (secrets, ports).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkText } from '../../src/plan/text.ts';
import { parseConfig } from '../../src/config/load.ts';
import { LISTENER_CONFIGS } from '../../src/config/listeners/index.ts';
import { configuredListeners } from '../../src/config/schema-listeners.ts';
import { InitError } from '../../src/lib/errors.ts';
import { LISTENER_TYPES } from '../../src/proxy/types/index.ts';

function configErr(text: string, pattern: RegExp): void {
  assert.throws(() => parseConfig(text, 'c.yaml'), (err: unknown) => {
    assert.ok(err instanceof InitError, String(err));
    assert.equal(err.exitCode, 78);
    assert.match(err.message, pattern);
    return true;
  });
}

const SECRETS = 'secrets: { s1: { source: file, path: x }, s2: { source: file, path: y } }\n';
const PSK = '{ type: psk, mode: server, listen: "0.0.0.0:8081", connect: "127.0.0.1:2", identities: { C: { shares: [s1, s2], combine: sha256-concat } } }';

test('a psk listener under listeners: parses with its defaults, and the shorthand is the same listener', () => {
  const c = parseConfig(`${SECRETS}listeners: { in: ${PSK} }`, 'c.yaml');
  const [l] = configuredListeners(c);
  assert.equal(l!.name, 'in');
  assert.equal(l!.field, 'listeners.in');
  assert.equal(l!.config.handshakeTimeout, 10_000);
  assert.equal(l!.config.tls12, false);
  const short = parseConfig(`${SECRETS}psk: ${PSK.replace('type: psk, ', '')}`, 'c.yaml');
  const [s] = configuredListeners(short);
  assert.equal(s!.name, 'psk');
  assert.equal(s!.field, 'psk');
  assert.deepEqual({ ...s!.config }, { ...l!.config });
});

test('the runtime table (src/proxy/types/) has an entry for each config type, made of that config side', () => {
  assert.deepEqual(Object.keys(LISTENER_TYPES), Object.keys(LISTENER_CONFIGS));
  for (const [name, config] of Object.entries(LISTENER_CONFIGS)) {
    const runtime = LISTENER_TYPES[name]!;
    assert.equal(runtime.type, name);
    assert.equal(config.type, name);
    for (const [field, value] of Object.entries(config)) assert.equal((runtime as unknown as Record<string, unknown>)[field], value, `${name}.${field}`);
    assert.equal(typeof runtime.start, 'function', `${name}.start`);
  }
});

test('listener errors name the field path', () => {
  configErr(`listeners: { in: { type: socks, listen: "0.0.0.0:1" } }`, /listeners\.in\.type: type must be one of psk, tls.*got "socks"/);
  configErr(`listeners: { in: 3 }`, /listeners\.in: must be an object with a type/);
  configErr(`${SECRETS}listeners: { in: ${PSK.replace('mode: server', 'mode: server, colour: red')} }`, /listeners\.in: unknown field "colour"/);
  configErr(`${SECRETS}listeners: { in: ${PSK.replace('[s1, s2]', '[s1, s3]')} }`, /listeners\.in\.identities\.C\.shares\[1\]: found "s3", but no secret has that name/);
  configErr(`${SECRETS}listeners: { in: ${PSK.replace('combine: sha256-concat', 'combine: hkdf-sha256')} }`, /listeners\.in\.identities\.C: hkdf-sha256 needs both salt and info/);
  configErr(`${SECRETS}listeners: { in: ${PSK.replace('"127.0.0.1:2"', 'nowhere')} }`, /listeners\.in\.connect: found "nowhere", write HOST:PORT/);
  configErr(`${SECRETS}listeners: { "bad name": ${PSK} }`, /listeners: found the key "bad name", a listener name must be a name/);
});

test('cross-listener rules: psk: and listeners.psk both, two listeners on one port', () => {
  configErr(`${SECRETS}psk: ${PSK.replace('type: psk, ', '')}\nlisteners: { psk: ${PSK} }`, /psk: there is also a listener named psk/);
  configErr(`${SECRETS}listeners: { a: ${PSK}, b: ${PSK} }`, /listeners\.b\.listen: port 8081 is also the port of listeners\.a/);
});

test('tee-init check lists each listener with its type, mode, addresses and secrets', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-plan-'));
  try {
    const file = join(dir, 'c.yaml');
    // check opens file secrets as a boot would: they exist (relative paths: beside the config).
    for (const f of ['x', 'y', 'c', 'k', 'a']) writeFileSync(join(dir, f), 'not PEM, just bytes\n');
    writeFileSync(file, `${SECRETS.replace('s2: { source: file, path: y }', 's2: { source: file, path: y }, c: { source: file, path: c }, k: { source: file, path: k }, a: { source: file, path: a }')}psk: ${PSK.replace('type: psk, ', '')}
listeners:
  mesh: { type: tls, mode: permissive, listen: "0.0.0.0:8443", connect: "127.0.0.1:8080", tls: { cert: c, key: k, ca: a } }
run: { command: [sleep, "1"] }
`);
    const text = await checkText(file);
    assert.match(text, /^listeners +psk: psk server, listen 0\.0\.0\.0:8081 -> 127\.0\.0\.1:2 \(secrets s1, s2\)$/m);
    assert.match(text, /^ +mesh: tls permissive, listen 0\.0\.0\.0:8443 -> 127\.0\.0\.1:8080 \(secrets c, k, a\)$/m);
    assert.doesNotMatch(text, /not referenced/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a listener that acts as the workload listens on loopback only (psk/tls client, tunnel client with a token or inner TLS)', () => {
  const pskClient = '{ type: psk, mode: client, listen: "LISTEN", connect: "peer.example:8081", identities: { C: { shares: [s1, s2], combine: sha256-concat } } }';
  const tlsClient = '{ type: tls, mode: client, listen: "LISTEN", connect: "peer.example:8443", tls: { cert: s1, key: s2, ca: s1 } }';
  const tunnelToken = '{ type: tunnel, mode: client, listen: "LISTEN", url: "https://svc.example/", token: { kind: access-token, credentials: alice } }';
  const tunnelInner = '{ type: tunnel, mode: client, listen: "LISTEN", url: "https://svc.example/", inner: { tls: { cert: s1, key: s2, ca: s1, serverName: svc.internal } } }';
  const CREDS = 'credentials: { alice: { type: adc } }\n';
  for (const [l, why] of [[pskClient, /pre-shared key/], [tlsClient, /client certificate/], [tunnelToken, /bearer token/], [tunnelInner, /client certificate/]] as const) {
    for (const bad of ['0.0.0.0:9000', '[::]:9000', '10.128.0.7:9000']) {
      configErr(`${SECRETS}${CREDS}listeners: { out: ${l.replace('LISTEN', bad)} }`, new RegExp(`listeners\\.out\\.listen: found "${bad.replace(/[[\]]/g, '\\$&')}", but .*${why.source}.*listen on loopback`));
    }
    for (const good of ['127.0.0.1:9000', '[::1]:9000', 'localhost:9000']) parseConfig(`${SECRETS}${CREDS}listeners: { out: ${l.replace('LISTEN', good)} }`, 'c.yaml');
  }
  // The shorthand too, and the same rule for it: one place (checkListenerReferences).
  configErr(`${SECRETS}psk: ${pskClient.replace('type: psk, ', '').replace('LISTEN', '0.0.0.0:9000')}`, /psk\.listen: found "0\.0\.0\.0:9000", but a psk listener in client mode/);
  // Server modes and a plain tunnel client serve their own side: any address.
  parseConfig(`${SECRETS}${CREDS}listeners: { in: ${PSK}, t: { type: tunnel, mode: client, listen: "0.0.0.0:9001", url: "https://svc.example/" } }`, 'c.yaml');
});
