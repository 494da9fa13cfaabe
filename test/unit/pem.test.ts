import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InitError } from '../../src/lib/errors.ts';
import { checkPemSecrets } from '../../src/lib/pem.ts';
import { memoryLog } from '../helpers/log.ts';

let dir: string;
const pem: Record<string, Buffer> = {};
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'tee-init-pem-'));
  for (const [name, days] of [['a', 365], ['b', 365], ['soon', 3]] as const) {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', String(days), '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:FALSE');
    pem[`${name}.key`] = readFileSync(join(dir, `${name}.key`));
    pem[`${name}.crt`] = readFileSync(join(dir, `${name}.crt`));
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

const data = (name: string, file: string) => ({ name, data: pem[file]! });
const dataErr = (pattern: RegExp) => (e: unknown) => e instanceof InitError && e.exitCode === 65 && pattern.test(e.message);

test('a matching key and certificate pass; non-PEM secrets are ignored', () => {
  const { log, records } = memoryLog();
  checkPemSecrets([data('cert', 'a.crt'), data('key', 'a.key'), { name: 'share', data: Buffer.from('00ff') }], log);
  assert.deepEqual(records().filter((r) => r.severity !== 'DEBUG'), []);
});

test('a key from another pair: 65, naming the key and the certificates', () => {
  const { log } = memoryLog();
  assert.throws(() => checkPemSecrets([data('cert', 'a.crt'), data('key', 'b.key')], log), dataErr(/secret key: private key matches no certificate among the secrets \(cert\)/));
});

test('a truncated certificate or key: 65 naming the secret', () => {
  const { log } = memoryLog();
  const cut = (b: Buffer) => Buffer.from(b.toString().replace(/\n[A-Za-z0-9+/=]{20,}\n/, '\nAAAA\n'));
  assert.throws(() => checkPemSecrets([{ name: 'cert', data: cut(pem['a.crt']!) }], log), dataErr(/secret cert: a CERTIFICATE block does not parse/));
  assert.throws(() => checkPemSecrets([{ name: 'key', data: cut(pem['a.key']!) }], log), dataErr(/secret key: the private key does not parse/));
});

test('a certificate expiring within 7 days is announced', () => {
  const { log, records } = memoryLog();
  checkPemSecrets([data('cert', 'soon.crt'), data('key', 'soon.key')], log);
  const warn = records().find((r) => r.severity === 'WARNING');
  assert.match(String(warn?.message), /secret cert: certificate "CN=soon" expires on .*, within 7 days/);
});

// Issue 8, item 6: what the check used to miss.
let ca: { crt: Buffer; key: Buffer };
let leaf: { crt: Buffer; key: Buffer };
let shortCa: Buffer;
before(() => {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '365', '-subj', '/CN=test CA', '-addext', 'basicConstraints=critical,CA:TRUE');
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.crt', '-days', '30', '-subj', '/CN=leaf', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-addext', 'basicConstraints=critical,CA:FALSE');
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'short-ca.key', '-out', 'short-ca.crt', '-days', '10', '-subj', '/CN=short CA', '-addext', 'basicConstraints=critical,CA:TRUE');
  const read = (f: string) => readFileSync(join(dir, f));
  ca = { crt: read('ca.crt'), key: read('ca.key') };
  leaf = { crt: read('leaf.crt'), key: read('leaf.key') };
  shortCa = read('short-ca.crt');
});
const DAY = 24 * 3600 * 1000;
const quiet = () => memoryLog().log;
const warnings = (check: (log: ReturnType<typeof memoryLog>['log']) => void) => {
  const { log, records } = memoryLog();
  check(log);
  return records().filter((r) => r.severity === 'WARNING').map((r) => String(r.message));
};
/** Everything from the END line on is gone: a copy cut off in transit or by a bad paste. */
const cutBeforeEnd = (b: Buffer) => Buffer.from(b.toString().replace(/-----END [A-Z ]+-----\s*$/, ''));

test('a certificate or key cut off before its END line: 65 naming the secret', () => {
  assert.throws(() => checkPemSecrets([{ name: 'cert', data: cutBeforeEnd(leaf.crt) }], quiet()), dataErr(/^secret cert: a CERTIFICATE block has no END line/));
  assert.throws(() => checkPemSecrets([{ name: 'key', data: cutBeforeEnd(leaf.key) }], quiet()), dataErr(/^secret key: a PRIVATE KEY block has no END line/));
  // The chain's second certificate cut off: the first one complete does not hide it.
  const chain = Buffer.concat([leaf.crt, cutBeforeEnd(ca.crt)]);
  assert.throws(() => checkPemSecrets([{ name: 'chain', data: chain }], quiet()), dataErr(/^secret chain: a CERTIFICATE block has no END line/));
  // openssl pkcs12 -nodes output starts with "Bag Attributes" lines: still PEM, still checked.
  const bag = Buffer.concat([Buffer.from('Bag Attributes\n    localKeyID: 01\n'), cutBeforeEnd(leaf.crt)]);
  assert.throws(() => checkPemSecrets([{ name: 'p12', data: bag }], quiet()), dataErr(/^secret p12: a CERTIFICATE block has no END line/));
});

test('a key must match a certificate among the secrets, CA or not', () => {
  // A CA-only "server cert" with an unrelated key: refused.
  assert.throws(() => checkPemSecrets([{ name: 'cert', data: ca.crt }, { name: 'key', data: leaf.key }], quiet()), dataErr(/^secret key: private key matches no certificate among the secrets \(cert\)/));
  // A CA with its own key (an issuing CA), a leaf with its key next to a CA bundle: fine.
  checkPemSecrets([{ name: 'ca', data: ca.crt }, { name: 'cakey', data: ca.key }], quiet());
  checkPemSecrets([{ name: 'ca', data: ca.crt }, { name: 'cert', data: leaf.crt }, { name: 'key', data: leaf.key }], quiet());
  // A CA bundle alone, a key alone (nothing to pair it with): fine.
  checkPemSecrets([{ name: 'bundle', data: Buffer.concat([ca.crt, shortCa]) }], quiet());
  checkPemSecrets([{ name: 'signing', data: leaf.key }], quiet());
});

test('an expired or not yet valid certificate: 65 naming the secret and the date, unless allowExpired', () => {
  const pair = (allowExpired?: boolean) => [{ name: 'cert', data: leaf.crt, allowExpired }, { name: 'key', data: leaf.key }];
  assert.throws(() => checkPemSecrets(pair(), quiet(), Date.now() + 40 * DAY), dataErr(/^secret cert: certificate "CN=leaf" expired on .*20\d\d GMT: renew it \(or set secrets\.cert\.allowExpired: true/));
  assert.throws(() => checkPemSecrets(pair(), quiet(), Date.now() - 2 * DAY), dataErr(/^secret cert: certificate "CN=leaf" is not valid before .*20\d\d GMT/));
  // The CA in the chain expired while the leaf is fine: the chain does not verify either.
  const chain = [{ name: 'cert', data: Buffer.concat([leaf.crt, shortCa]) }, { name: 'key', data: leaf.key }];
  assert.throws(() => checkPemSecrets(chain, quiet(), Date.now() + 20 * DAY), dataErr(/^secret cert: certificate "CN=short CA" expired/));
  const warned = warnings((log) => checkPemSecrets(pair(true), log, Date.now() + 40 * DAY));
  assert.deepEqual(warned.map((w) => w.replace(/on .* GMT/, 'on DATE')), ['secret cert: certificate "CN=leaf" expired on DATE (allowed by secrets.cert.allowExpired)']);
});

test('a CA bundle: one expired root among valid ones is announced; all expired is refused', () => {
  const bundle = [{ name: 'ca', data: Buffer.concat([ca.crt, shortCa]) }];
  const warned = warnings((log) => checkPemSecrets(bundle, log, Date.now() + 20 * DAY));
  assert.equal(warned.length, 1);
  assert.match(warned[0]!, /^secret ca: certificate "CN=short CA" expired on .* \(an old root in a CA bundle: not used\)$/);
  assert.throws(() => checkPemSecrets(bundle, quiet(), Date.now() + 400 * DAY), dataErr(/^secret ca: certificate "CN=test CA" expired/));
});

test('a JSON service-account key (PEM inside a string) is not taken for PEM', () => {
  const json = JSON.stringify({ type: 'service_account', private_key: leaf.key.toString() });
  checkPemSecrets([{ name: 'sa', data: Buffer.from(json) }, { name: 'cert', data: ca.crt }], quiet());
});

test('a private key written readable by group or others draws one warning naming the file', () => {
  const w = (mode: number) => warnings((log) => checkPemSecrets([{ name: 'cert', data: leaf.crt, file: 'server.crt', mode: 0o444 }, { name: 'key', data: leaf.key, file: 'server.key', mode }], log));
  assert.deepEqual(w(0o400), []);
  assert.deepEqual(w(0o440), ['secret key: private key file server.key is readable by its group (mode 0440); use "0400" unless another user must read it']);
  assert.deepEqual(w(0o444), ['secret key: private key file server.key is readable by everyone (mode 0444); use "0400" unless another user must read it']);
});
