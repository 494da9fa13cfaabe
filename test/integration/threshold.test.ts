// Issue 22, part 2, through the whole product: a PSK whose key any 2 of 3 collaborators' shares
// make (`combine: shamir`), the shares in the fake Secret Manager, one collaborator down in each
// way a share can fail (denied, missing, disabled, unavailable past the deadline), fewer than 2
// arriving, a corrupted share caught by `verify`, and a rotation with one collaborator still down.
// The peer is openssl s_client in front of a real redis-server.
import assert from 'node:assert/strict';
import { hkdfSync, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { splitSecret, verifyValue } from '../../src/proxy/types/psk/threshold.ts';
import { boot, type Boot } from '../helpers/boot.ts';
import type { LogRecord, LogTail } from '../helpers/init.ts';
import { freePort } from '../helpers/net.ts';
import { pingOverPsk } from '../helpers/psk.ts';
import { needs } from '../helpers/tools.ts';

const SALT = 'tee-init-test';
const INFO = 'redis';
const keyOf = (secret: Buffer) => Buffer.from(hkdfSync('sha256', secret, SALT, INFO, 32)).toString('hex');

/** One split into three secrets: a and c in alice's project, b in bob's. */
interface Split {
  secret: Buffer;
  shares: string[];
  refs: { a: string; b: string; c: string };
}

let counter = 0;
async function newSplit(b: Boot, options: { bob?: 'denied' | 'missing' | 'disabled' | 'ok' } = {}): Promise<Split> {
  const secret = randomBytes(32);
  const shares = await splitSecret(secret, 3, 2);
  const tag = `t${++counter}`;
  const refs = { a: `projects/alice-proj/secrets/${tag}_a`, b: `projects/bob-proj/secrets/${tag}_b`, c: `projects/alice-proj/secrets/${tag}_c` };
  b.world.addSecret(refs.a, `${shares[0]}\n`);
  b.world.addSecret(refs.c, `${shares[2]}\n`);
  const bob = options.bob ?? 'ok';
  if (bob === 'denied') b.world.addSecret(refs.b, `${shares[1]}\n`, { access: [] });
  if (bob === 'disabled') b.world.addSecret(refs.b, [{ data: `${shares[1]}\n`, state: 'DISABLED' }]);
  if (bob === 'ok') b.world.addSecret(refs.b, `${shares[1]}\n`);
  return { secret, shares, refs };
}

describe('threshold PSK (combine: shamir, 2 of 3)', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  function config(s: Split, psk: Record<string, unknown>, identity: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
    const secrets = b.config().secrets as Record<string, Record<string, unknown>>;
    return b.config({
      secrets: {
        share_a: { ...secrets.share_a, ref: `${s.refs.a}/versions/latest` },
        share_b: { ...secrets.share_b, ref: `${s.refs.b}/versions/latest` },
        share_c: { source: 'gcp', ref: `${s.refs.c}/versions/latest`, credentials: 'alice' },
      },
      psk: { ...psk, identities: { Client1: { shares: ['share_a', 'share_b', 'share_c'], combine: 'shamir', threshold: 2, salt: SALT, info: INFO, ...identity } } },
      ...extra,
    });
  }

  /** A client-mode listener (no upstream to wait for) beside a sleeping child: the boot is all we look at. */
  async function clientMode(s: Split, identity: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
    return config(s, { mode: 'client', listen: `127.0.0.1:${await freePort()}`, connect: `127.0.0.1:${await freePort()}` }, identity, { run: { command: ['sleep', '60'] }, ...extra });
  }

  const skipped = (log: LogTail, secret: string): LogRecord | undefined =>
    log.records.find((r) => r.severity === 'WARNING' && r.message.startsWith(`secret ${secret} (from collaborator `) && r.message.includes('skipped'));

  test('bob denied: alice\'s two shares make the key, openssl reaches redis; a rotation with bob still down reaches new connections', async (t) => {
    if (!needs(t, 'redis-server', 'apt-get install redis-server') || !needs(t, 'openssl', 'apt-get install openssl')) return;
    const s = await newSplit(b, { bob: 'denied' });
    const [listen, redisPort] = [await freePort(), await freePort()];
    const { proc, log } = b.start(config(s, { mode: 'server', listen: `127.0.0.1:${listen}`, connect: `127.0.0.1:${redisPort}` }, { verify: undefined }, {
      run: { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] },
      refresh: { every: '1h' },
    }));
    try {
      await log.waitFor('all units ready', 30_000);
      const warning = skipped(log, 'share_b');
      assert.ok(warning, log.text);
      assert.match(warning.message, /^secret share_b \(from collaborator bob\) skipped: .*permission denied.*; it is one of 3 shares of psk identity "Client1", which needs 2$/);
      assert.equal(await pingOverPsk(listen, keyOf(s.secret)), true, 'the key from 2 of 3 shares');
      assert.equal(await pingOverPsk(listen, 'ab'.repeat(32)), false);

      // Rotation: a new split; alice's two secrets get the new shares, bob's stays unreadable.
      const secret2 = randomBytes(32);
      const shares2 = await splitSecret(secret2, 3, 2);
      b.world.addVersion(s.refs.a, `${shares2[0]}\n`);
      b.world.addVersion(s.refs.c, `${shares2[2]}\n`);
      const from = log.records.length;
      const done = log.waitFor((r) => log.records.indexOf(r) >= from && r.message.includes('refresh: rotated'), 30_000);
      proc.kill('SIGHUP');
      assert.deepEqual((await done).changed, ['share_a', 'share_c']);
      assert.equal(await pingOverPsk(listen, keyOf(secret2)), true, 'the new key reaches new connections');
      assert.equal(await pingOverPsk(listen, keyOf(s.secret)), false, 'the old key no longer does');
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal((await proc).exitCode, 0, log.text);
    for (const needle of [...s.shares, s.secret.toString('hex'), keyOf(s.secret)]) assert.equal(log.text.includes(needle), false, 'no share or key in the log');
    assert.deepEqual(b.leftovers(), []);
  });

  for (const [bob, why] of [['missing', /not found/], ['disabled', /disabled or destroyed/]] as const) {
    test(`bob's share ${bob}: skipped with a warning naming it and bob, the boot goes on`, async () => {
      const s = await newSplit(b, { bob });
      const { proc, log } = b.start(await clientMode(s));
      try {
        await log.waitFor('psk proxy listening', 30_000);
        assert.match(skipped(log, 'share_b')?.message ?? log.text, why);
        assert.equal(log.find('secrets fetched')?.skipped, 1);
      } finally {
        proc.kill('SIGTERM');
      }
      await proc;
    });
  }

  test('bob\'s share unavailable past the deadline: skipped, the boot goes on', async () => {
    const s = await newSplit(b);
    b.world.gcp.fault('sm', { status: 503 }, { secret: s.refs.b });
    try {
      const { proc, log } = b.start(await clientMode(s, {}, { fetch: { deadline: '3s', attemptTimeout: '1s', backoff: { initial: '50ms', max: '500ms' } } }));
      try {
        await log.waitFor('psk proxy listening', 30_000);
        assert.match(skipped(log, 'share_b')?.message ?? log.text, /still unavailable after the 3s fetch\.deadline/);
      } finally {
        proc.kill('SIGTERM');
      }
      await proc;
    } finally {
      b.world.gcp.clearFaults('sm');
    }
  });

  test('fewer than 2 arrive: the boot fails naming which arrived and which did not, no child', async () => {
    const s = await newSplit(b, { bob: 'denied' });
    const c = await clientMode(s);
    (c.secrets as Record<string, Record<string, unknown>>).share_c!.ref = 'projects/alice-proj/secrets/no_such_share/versions/1';
    const { proc, log } = b.start(c);
    const result = await proc;
    assert.equal(result.exitCode, 69, log.text); // denied (77) and missing (78): no one status, so "unavailable"
    const error = log.records.find((r) => r.severity === 'ERROR')!;
    assert.match(error.message, /^psk identity "Client1": needs 2 of its 3 shares, 1 arrived \(share_a\); not arrived: share_b \(.*permission denied.*\); share_c \(.*not found.*\)$/);
    assert.equal(log.find('child started'), undefined);
    assert.deepEqual(b.leftovers(), []);
  });

  test('a corrupted share is caught by verify: 65 naming the identity, no child', async () => {
    const s = await newSplit(b, { bob: 'denied' });
    const bad = s.shares[2]!.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    b.world.addVersion(s.refs.c, `${bad}\n`);
    const { proc, log } = b.start(await clientMode(s, { verify: verifyValue(s.secret) }));
    const result = await proc;
    assert.equal(result.exitCode, 65, log.text);
    assert.match(log.records.find((r) => r.severity === 'ERROR')!.message, /^psk identity "Client1": shares "share_a", "share_c" combine to a secret that does not match verify/);
    assert.equal(log.find('child started'), undefined);
  });
});
