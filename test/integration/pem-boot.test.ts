// PEM checks in a real boot (issue 8, item 6): an expired certificate or a CA-only "server
// cert" with an unrelated key stops the boot with 65 naming the secret, before any file is
// written or the child started; `allowExpired: true` lets an expired one through with a warning.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createPki, type Pki } from '../helpers/pki.ts';
import { runInit } from '../helpers/init.ts';

let dir: string;
let pki: Pki;
let expired: { cert: string; key: string };

before(() => {
  dir = mkdtempSync('/dev/shm/tee-init-pem-boot-');
  pki = createPki(join(dir, 'pki'));
  expired = expiredCertificate(join(dir, 'expired'));
});

/** A self-signed certificate valid in January 2020 (openssl 3.0's req cannot backdate; `ca` can). */
function expiredCertificate(at: string): { cert: string; key: string } {
  mkdirSync(at);
  writeFileSync(join(at, 'ca.cnf'), '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n');
  writeFileSync(join(at, 'index.txt'), '');
  writeFileSync(join(at, 'serial'), '01\n');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: at, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'csr.pem', '-subj', '/CN=expired.test');
  openssl('ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'key.pem', '-in', 'csr.pem', '-out', 'cert.pem', '-notext', '-startdate', '20200101000000Z', '-enddate', '20200201000000Z');
  return { cert: join(at, 'cert.pem'), key: join(at, 'key.pem') };
}
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function boot(cert: string, key: string, extra: Record<string, unknown> = {}, keyFile: string | undefined = 'server.key') {
  const out = join(dir, `out-${n}`);
  const marker = join(dir, `started-${n}`);
  const config = join(dir, `config-${n++}.json`);
  writeFileSync(config, JSON.stringify({
    secrets: {
      cert: { source: 'file', path: cert, file: 'server.crt', ...extra },
      key: { source: 'file', path: key, ...(keyFile ? { file: keyFile } : {}) },
    },
    output: { dir: out },
    run: { command: ['touch', marker] },
  }));
  return { run: () => runInit(['--config', config]), out, marker };
}

test('an expired server certificate: 65 naming the secret and the date; nothing written, no child', async () => {
  const b = boot(expired.cert, expired.key);
  const { code, log } = await b.run();
  assert.equal(code, 65, log.text);
  const errors = log.records.filter((r) => r.severity === 'ERROR').map((r) => r.message);
  assert.equal(errors.length, 1, log.text);
  assert.match(errors[0]!, /^secret cert: certificate "CN=expired\.test" expired on Feb {2}1 00:00:00 2020 GMT: renew it \(or set secrets\.cert\.allowExpired: true to use it anyway\)$/);
  assert.equal(existsSync(b.marker), false);
  assert.equal(existsSync(b.out), false);
});

test('allowExpired: true starts the child, with one warning', async () => {
  const b = boot(expired.cert, expired.key, { allowExpired: true });
  const { code, log } = await b.run();
  assert.equal(code, 0, log.text);
  assert.ok(existsSync(b.marker));
  assert.match(log.find('expired on')!.message, /allowed by secrets\.cert\.allowExpired/);
  assert.equal(log.find('expired on')!.severity, 'WARNING');
});

test('a CA certificate as the server cert with an unrelated key: 65', async () => {
  const b = boot(pki.ca.cert, pki.server.key);
  const { code, log } = await b.run();
  assert.equal(code, 65, log.text);
  assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /^secret key: private key matches no certificate among the secrets \(cert\)/);
  assert.equal(existsSync(b.marker), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('out-')), []);
});

test('a key kept in memory (no file:) is checked too', async () => {
  const b = boot(pki.ca.cert, pki.server.key, {}, undefined);
  const { code, log } = await b.run();
  assert.equal(code, 65, log.text);
  assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /^secret key: private key matches no certificate among the secrets \(cert\)/);
  assert.equal(existsSync(b.marker), false);
});
