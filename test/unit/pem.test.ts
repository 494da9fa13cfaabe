import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { InitError } from '../../src/errors.ts';
import { checkPemSecrets } from '../../src/materialize/pem.ts';
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
