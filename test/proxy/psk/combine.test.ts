// Share combination (issue 5, "Key combination"): the demo's test vector, an HKDF known answer
// computed outside Node, and every degenerate input.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InitError } from '../../../src/errors.ts';
import { combineShares, type CombineSpec, type Share } from '../../../src/proxy/types/psk/index.ts';
import { have } from '../../helpers/tools.ts';
import { ALICE, BOB, KEY_HEX } from './peers.ts';

const SHA = { method: 'sha256-concat' } as const;
const HKDF = { method: 'hkdf-sha256', salt: 'tee-init-demo', info: 'psk Client1' } as const;
// HKDF-SHA256(IKM = alice||bob decoded, salt "tee-init-demo", info "psk Client1", L = 32), computed
// with `openssl kdf ... HKDF` (OpenSSL 3.0.19) and with Python's hmac (RFC 5869 extract+expand by
// hand); both gave this value.
const HKDF_KEY_HEX = '122a0f6e78db8fa43ade7b3138138b2eea747b3391ca4465f2d49845e80194af';

const two = (a: Share['value'], b: Share['value']): Share[] => [{ name: 'share_a', value: a }, { name: 'share_b', value: b }];

function rejects(shares: Share[], spec: CombineSpec, exitCode: number, message: RegExp): void {
  assert.throws(() => combineShares(shares, spec, 'Client1'), (err: unknown) => {
    assert.ok(err instanceof InitError, `expected InitError, got ${String(err)}`);
    assert.equal(err.exitCode, exitCode);
    assert.match(err.message, message);
    // Whatever went wrong, the message must not carry share bytes.
    for (const s of shares) {
      if (s.value === undefined) continue;
      const v = typeof s.value === 'string' ? s.value.trim() : Buffer.from(s.value).toString().trim();
      if (v.length >= 8) assert.ok(!err.message.includes(v.slice(0, 8)), `share bytes in: ${err.message}`);
    }
    return true;
  });
}

describe('sha256-concat', () => {
  test('matches the reference demo test vector', () => {
    assert.equal(combineShares(two(ALICE, BOB), SHA).toString('hex'), KEY_HEX);
  });

  test('equals sha256sum of the concatenated hex text (computed outside Node)', (t) => {
    if (!have('sha256sum')) return t.skip('sha256sum is not installed (coreutils)');
    const out = execFileSync('sh', ['-c', 'printf "%s%s" "$1" "$2" | sha256sum', 'sh', ALICE, BOB], { encoding: 'utf8' });
    assert.equal(combineShares(two(ALICE, BOB), SHA).toString('hex'), out.split(' ')[0]);
  });

  test('accepts payloads as bytes and drops one trailing newline (LF or CRLF)', () => {
    for (const [a, b] of [[`${ALICE}\n`, `${BOB}\r\n`], [Buffer.from(`${ALICE}\n`), Buffer.from(BOB)]] as const) {
      assert.equal(combineShares(two(a, b), SHA).toString('hex'), KEY_HEX);
    }
  });

  test('is order-dependent and hashes the text as stored (letter case matters)', () => {
    assert.notEqual(combineShares(two(BOB, ALICE), SHA).toString('hex'), KEY_HEX);
    assert.notEqual(combineShares(two(ALICE.toUpperCase(), BOB), SHA).toString('hex'), KEY_HEX);
  });

  test('does not modify the caller\'s buffers', () => {
    const a = Buffer.from(ALICE);
    combineShares(two(a, BOB), SHA);
    assert.equal(a.toString(), ALICE);
  });

  test('works with more than two shares', () => {
    const carol = '5'.repeat(63) + '6';
    const expected = execFileSync('sh', ['-c', 'printf "%s%s%s" "$1" "$2" "$3" | sha256sum', 'sh', ALICE, BOB, carol], { encoding: 'utf8' });
    const shares = [...two(ALICE, BOB), { name: 'share_c', value: carol }];
    assert.equal(combineShares(shares, SHA).toString('hex'), expected.split(' ')[0]);
  });
});

describe('hkdf-sha256', () => {
  test('known answer (openssl kdf and a by-hand RFC 5869 computation agree)', () => {
    assert.equal(combineShares(two(ALICE, BOB), HKDF).toString('hex'), HKDF_KEY_HEX);
  });

  test('equals what `openssl kdf` computes now, the command a peer would use', (t) => {
    if (!have('openssl')) return t.skip('openssl is not installed (apt-get install openssl)');
    let out: string;
    try {
      out = execFileSync('openssl', ['kdf', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${ALICE}${BOB}`,
        '-kdfopt', `salt:${HKDF.salt}`, '-kdfopt', `info:${HKDF.info}`, 'HKDF'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      return t.skip('this openssl has no `kdf` command (OpenSSL < 3.0)');
    }
    assert.equal(combineShares(two(ALICE, BOB), HKDF).toString('hex'), out.trim().replaceAll(':', '').toLowerCase());
  });

  test('decodes the shares: letter case does not matter; salt, info and order do', () => {
    const key = combineShares(two(ALICE, BOB), HKDF).toString('hex');
    assert.equal(combineShares(two(ALICE.toUpperCase(), `${BOB}\n`), HKDF).toString('hex'), key);
    assert.notEqual(combineShares(two(BOB, ALICE), HKDF).toString('hex'), key);
    assert.notEqual(combineShares(two(ALICE, BOB), { ...HKDF, salt: 'other' }).toString('hex'), key);
    assert.notEqual(combineShares(two(ALICE, BOB), { ...HKDF, info: 'psk Client2' }).toString('hex'), key);
  });

  test('salt and info are required and non-empty (config error 78)', () => {
    rejects(two(ALICE, BOB), { method: 'hkdf-sha256', salt: '', info: 'x' }, 78, /non-empty salt/);
    rejects(two(ALICE, BOB), { method: 'hkdf-sha256', info: 'x' } as unknown as CombineSpec, 78, /non-empty salt/);
    rejects(two(ALICE, BOB), { method: 'hkdf-sha256', salt: 'x' } as unknown as CombineSpec, 78, /non-empty info/);
    rejects(two(ALICE, BOB), { method: 'hkdf-sha256', salt: 'x', info: 'i'.repeat(1025) }, 78, /longer than 1024/);
  });
});

describe('degenerate input', () => {
  for (const spec of [SHA, HKDF]) {
    describe(spec.method, () => {
      test('not hex → 65, naming the share and the position, not the character', () => {
        rejects(two(ALICE, 'g' + BOB.slice(1)), spec, 65, /share "share_b" is not hex \(character 1 of 64/);
        rejects(two(ALICE, BOB.slice(0, 63) + ' '), spec, 65, /share "share_b" is not hex \(character 64/);
        rejects(two(` ${ALICE.slice(1)}`, BOB), spec, 65, /share "share_a" is not hex/);
      });

      test('wrong length → 65 (only 64 hex digits; the xxd -p mistake gives 128)', () => {
        rejects(two(ALICE.slice(0, 62), BOB), spec, 65, /share "share_a" must be 64 hex digits \(32 bytes\), got 62 characters/);
        rejects(two(ALICE, Buffer.from(BOB).toString('hex')), spec, 65, /share "share_b" must be 64 hex digits.*got 128/);
        rejects(two(ALICE, ''), spec, 65, /share "share_b" must be 64 hex digits.*got 0/);
        rejects(two(ALICE, `${BOB}\n\n`), spec, 65, /share "share_b" must be 64 hex digits.*got 65/);
        rejects(two(ALICE, `${BOB} \n`), spec, 65, /share "share_b" must be 64 hex digits.*got 65/);
      });

      test('all zeros, or one byte repeated → 65', () => {
        rejects(two(ALICE, '0'.repeat(64)), spec, 65, /share "share_b" is all zeros/);
        rejects(two('F'.repeat(64), BOB), spec, 65, /share "share_a" is one byte repeated/);
        rejects(two('ab'.repeat(32), BOB), spec, 65, /share "share_a" is one byte repeated/);
      });

      test('two identical shares → 65 (in any letter case)', () => {
        rejects(two(ALICE, ALICE), spec, 65, /shares "share_a" and "share_b" are identical/);
        rejects(two(ALICE, `${ALICE.toUpperCase()}\n`), spec, 65, /shares "share_a" and "share_b" are identical/);
      });

      test('fewer than two shares, or the same secret twice → config error 78', () => {
        rejects([{ name: 'share_a', value: ALICE }], spec, 78, /at least 2 shares, got 1/);
        rejects([], spec, 78, /at least 2 shares, got 0/);
        rejects([{ name: 'share_a', value: ALICE }, { name: 'share_a', value: BOB }], spec, 78, /"share_a" is listed twice/);
      });

      test('a missing value → 65', () => {
        rejects(two(ALICE, undefined as unknown as string), spec, 65, /share "share_b" has no value/);
      });
    });
  }

  test('no default method: a missing or unknown method → 78', () => {
    rejects(two(ALICE, BOB), {} as CombineSpec, 78, /combine must be one of sha256-concat, hkdf-sha256 \(there is no default\)/);
    rejects(two(ALICE, BOB), { method: 'xor' } as unknown as CombineSpec, 78, /got "xor"/);
  });

  test('errors name the identity they belong to', () => {
    rejects(two(ALICE, ALICE), SHA, 65, /^psk identity "Client1": /);
  });
});
