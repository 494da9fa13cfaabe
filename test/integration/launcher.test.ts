// Issue 22, part 3: the launcher's contract, through the real bundle and the fake launcher.
// - A token file past its exp that the launcher does not refresh (refresh disabled, or Intel
//   Trust Authority configured) is replaced by a default token from the teeserver, at the boot
//   and at every refresh; one line says which source was used. The fake STS refuses an
//   expired token, so every exchange that works proves the replacement.
// - A token from a debug image (dbgstat not disabled-since-boot) stops the boot with 77 naming
//   the claim, unless attestation.allowDebug.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';

describe("the launcher's contract", () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  const restore = () => b.world.writeToken();
  const defaultTokenRequests = () => b.world.teeserver!.requests.filter((r) => r.method === 'GET' && r.path === '/v1/token' && r.status === 200).length;

  test('a stale token file: the teeserver\'s default token replaces it at the boot and at each refresh; one line says so', async () => {
    await b.world.writeToken({}, { expiresInSeconds: -120 });
    try {
      const before = defaultTokenRequests();
      const { proc, log } = b.start(b.config({ run: { command: ['sleep', '60'], signals: ['SIGUSR1'] }, refresh: { every: '1h' } }));
      try {
        const said = await log.waitFor('using a default token from the teeserver', 30_000);
        assert.equal(said.severity, 'INFO');
        assert.match(said.message, /^attestation token file .* expired at .* \(the launcher does not refresh it: refresh disabled, or Intel Trust Authority configured\): using a default token from the teeserver /);
        assert.equal(said.source, 'teeserver');
        await log.waitFor('secrets fetched', 30_000); // the fake STS refuses an expired token: every exchange worked
        await log.waitFor('all units ready', 30_000);
        await log.waitFor('refresh: 3 secrets every 1h', 30_000);
        const exchanges = b.world.gcp.requestsOf('sts').length;
        assert.ok(defaultTokenRequests() - before >= 3, 'the attestation check and both collaborators\' exchanges asked the teeserver');

        // A refresh exchanges again: with the file still stale, the teeserver again.
        const from = log.records.length;
        const refreshed = log.waitFor((r) => log.records.indexOf(r) >= from && /^refresh(: no secret changed|: rotated| failed)/.test(r.message), 30_000);
        proc.kill('SIGHUP');
        assert.match((await refreshed).message, /^refresh: no secret changed/);
        assert.ok(b.world.gcp.requestsOf('sts').length > exchanges, 'the refresh exchanged fresh tokens');
        assert.equal(log.records.filter((r) => r.message.includes('using a default token from the teeserver') && r.severity === 'INFO').length, 1, 'said once, not at every refresh');
      } finally {
        proc.kill('SIGTERM');
      }
      await proc;
      assert.equal(log.text.includes('eyJ'), false, 'no token in the log');
    } finally {
      await restore();
    }
  });

  test('a fresh token file is used as it is: the teeserver is not asked', async () => {
    const before = defaultTokenRequests();
    const { proc, log } = b.start(b.config());
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    assert.equal(log.find('attestation token read')?.source, 'file');
    assert.equal(defaultTokenRequests(), before);
  });

  test('a debug image\'s token (dbgstat enabled): 77 naming the claim, before any request', async () => {
    await b.world.writeToken({ dbgstat: 'enabled' });
    try {
      const sts = b.world.gcp.requestsOf('sts').length;
      const config = b.config();
      (config.attestation as Record<string, unknown>).require = {};
      const { proc, log } = b.start(config);
      const result = await proc;
      assert.equal(result.exitCode, 77, log.text);
      const error = log.records.find((r) => r.severity === 'ERROR')!;
      assert.match(error.message, /^attestation policy not met: claim dbgstat is "enabled", not "disabled-since-boot": on a debug image the operator can read the secrets/);
      assert.equal(error.claim, 'dbgstat');
      assert.equal(b.world.gcp.requestsOf('sts').length, sts, 'nothing was asked of anyone');
      assert.equal(log.find('child started'), undefined);
    } finally {
      await restore();
    }
  });

  test('attestation.allowDebug: true lets a debug image boot, with a warning', async () => {
    await b.world.writeToken({ dbgstat: 'enabled' });
    try {
      const local = join(b.dir, 'local-secret');
      writeFileSync(local, 'not from a collaborator');
      // The collaborators' providers refuse a debug token themselves: a local secret only.
      const config = b.config({ secrets: { local: { source: 'file', path: local, file: 'local.txt' } } });
      (config.attestation as Record<string, unknown>).allowDebug = true;
      const { proc, log } = b.start(config);
      const result = await proc;
      assert.equal(result.exitCode, 0, log.text);
      assert.match(log.records.find((r) => r.severity === 'WARNING' && r.message.startsWith('attestation: dbgstat'))?.message ?? log.text, /a debug image: the operator can read the secrets/);
    } finally {
      await restore();
    }
  });
});
