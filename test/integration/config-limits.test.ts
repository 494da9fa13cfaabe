// Values that used to pass the config and then broke the boot: durations past Node's timer
// limit, uids Node cannot spawn as, PSK values the listener refused after the child started.
// Each is now refused before anything starts: 78 (64 on the command line), one line, no child.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { boot, type Boot } from '../helpers/boot.ts';
import { Lines } from '../helpers/lines.ts';
import { runInit, startInit, type LogRecord } from '../helpers/init.ts';

const errors = (records: LogRecord[]) => records.filter((r) => r.severity === 'ERROR' || r.severity === 'CRITICAL');

describe('limits refused before the child starts', () => {
  let b: Boot;
  before(async () => {
    b = await boot();
  });
  after(() => b.close());

  async function refused(overrides: Record<string, unknown>, pattern: RegExp, patch?: (c: Record<string, any>) => void) {
    const config = b.config(overrides);
    patch?.(config);
    const { proc, log } = b.start(config);
    const result = await proc;
    assert.equal(result.exitCode, 78, log.text);
    const errs = errors(log.records);
    assert.equal(errs.length, 1, log.text);
    assert.match(errs[0]!.message, pattern);
    assert.equal(existsSync(b.marker), false, 'no child started');
    assert.deepEqual(b.leftovers(), []);
  }

  test('--grace-period 1000h / TEE_INIT_GRACE_PERIOD: 64 at once, the child never starts', async () => {
    // Before: the 1000h timer fired at once, so a child that exits 5 on TERM was KILLed (137).
    const script = `touch ${b.marker}; trap 'exit 5' TERM; while :; do sleep 0.01; done`;
    for (const [args, env] of [[['--grace-period', '1000h'], {}], [[], { TEE_INIT_GRACE_PERIOD: '1000h' }]] as const) {
      const { result, code } = await runInit([...args, '--', 'sh', '-c', script], { env });
      assert.equal(code, 64);
      assert.match(result.stderr as string, /^tee-init: (--grace-period|TEE_INIT_GRACE_PERIOD): "1000h" is longer than the longest timer Node\.js can run \(2147483647 ms, about 24\.8 days\): write at most 596h$/);
      assert.equal(existsSync(b.marker), false);
    }
  });

  test('a grace period at the limit still works: TERM, and the child exits 5 by itself', async () => {
    const script = `trap 'exit 5' TERM; echo up; while :; do sleep 0.01; done`;
    const { proc } = startInit(['--grace-period', '596h', '--', 'sh', '-c', script], { stdout: 'pipe' });
    await new Lines(proc.stdout!).until(/^up$/);
    proc.kill('SIGTERM');
    assert.equal((await proc).exitCode, 5);
  });

  test('run.gracePeriod: 1000h is a config error', () => refused({}, /run\.gracePeriod: "1000h" is longer than the longest timer/, (c) => (c.run.gracePeriod = '1000h')));

  test('several problems: the boot names the first and sends to check for the rest', () =>
    refused({}, /fetch\.deadline: "0s" is too short: write at least 1ms \(and 1 more: run tee-init check --config \S+ to see them all\)$/, (c) => {
      c.fetch.deadline = '0s';
      c.run.gracePeriod = -1;
    }));

  test('fetch.attemptTimeout: 1000h is a config error (it made every attempt fail at once)', () =>
    refused({}, /fetch\.attemptTimeout: "1000h" is longer than the longest timer/, (c) => (c.fetch.attemptTimeout = '1000h')));

  test('run.user "4294967295" and output.owner "4294967296:1": 78 naming the field, not 70', async () => {
    await refused({}, /run\.user: uid 4294967295 in "4294967295" is out of range: write a uid from 0 to 2147483647/, (c) => (c.run.user = '4294967295'));
    await refused({}, /output\.owner: uid 4294967296 in "4294967296:1" is out of range/, (c) => (c.output.owner = '4294967296:1'));
  });

  test('psk.handshakeTimeout: 0 and an idle timeout of 400 nines fail the config, not the boot after the child', async () => {
    const psk = (extra: Record<string, unknown>) => ({
      psk: { mode: 'server', listen: '127.0.0.1:0', connect: '127.0.0.1:1', identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } }, ...extra },
    });
    await refused(psk({ handshakeTimeout: 0 }), /psk\.handshakeTimeout: 0 is too short: write at least 1ms/);
    await refused(psk({ idleTimeout: '9'.repeat(400) }), /psk\.idleTimeout: "9+\.\.\." is longer than the longest timer/);
    await refused(psk({ idleTimeout: 1e300 }), /psk\.idleTimeout: 1e\+300 is longer than the longest timer/);
    await refused(psk({ listen: '127.0.0.1:70000' }), /psk\.listen: port must be 0-65535, got 70000/);
    await refused(psk({ identities: { ['é'.repeat(65)]: { shares: ['share_a'], combine: 'sha256-concat' } } }), /psk\.identities: found the key "é+\.\.\." \(65 characters\), an identity must be 1-128 bytes/);
  });
});
