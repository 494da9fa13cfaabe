// Share combination (issue 5, "Key combination"; issue 22, t of n): the demo's test vector, an
// HKDF known answer computed outside Node, a Shamir split made by hand, and every degenerate input.
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { InitError } from '../../../src/lib/errors.ts';
import { combineShares, type CombineSpec, type Share } from '../../../src/proxy/types/psk/index.ts';
import { combineThreshold, splitSecret, verifyValue, type ThresholdSpec } from '../../../src/proxy/types/psk/threshold.ts';
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

describe('shamir (t of n)', () => {
  // A 2-of-3 split made by hand, outside the library: f(x) = s + a·x over GF(2^8) with the AES
  // polynomial (0x11b, the field HashiCorp Vault and shamir-secret-sharing use), shares f(1),
  // f(2), f(3) with x last. Computed with a few lines of Python.
  const S = '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f';
  const [X1, X2, X3] = [
    '131b030b0b333b23235b534b4b437b73535ba3ababb3bb83839b93ebebe3fbf301',
    '160530232a594c7f6e9d88bbb2a1d4c7c6d53b2821120774655643b0b9aa9f8c02',
    '150f213b357f614b55dfc1ebe5ffb1abb5afbaa0ae849ad0cee4fa707e644a5003',
  ] as const;
  const SPEC = { method: 'shamir', threshold: 2, salt: 'tee-init-test', info: 'redis' } as const;
  const KEY = Buffer.from(hkdfSync('sha256', Buffer.from(S, 'hex'), SPEC.salt, SPEC.info, 32)).toString('hex');
  const VERIFY = `sha256:${createHash('sha256').update(Buffer.from(S, 'hex')).digest('hex')}`;
  const three = (a: Share['value'], b: Share['value'], c: Share['value']): Share[] => [
    { name: 'share_a', value: a }, { name: 'share_b', value: b }, { name: 'share_c', value: c },
  ];
  const key = async (shares: Share[], spec: ThresholdSpec = SPEC) => (await combineThreshold(shares, spec, 'Client1')).toString('hex');
  async function refuses(shares: Share[], spec: ThresholdSpec, exitCode: number, message: RegExp): Promise<void> {
    await assert.rejects(combineThreshold(shares, spec, 'Client1'), (err: unknown) => {
      assert.ok(err instanceof InitError, `expected InitError, got ${String(err)}`);
      assert.equal(err.exitCode, exitCode, err.message);
      assert.match(err.message, message);
      for (const s of shares) {
        const v = typeof s.value === 'string' ? s.value : Buffer.from(s.value).toString();
        if (v.trim().length >= 8) assert.ok(!err.message.includes(v.trim().slice(0, 8)), `share bytes in: ${err.message}`);
      }
      assert.ok(!err.message.includes(S.slice(0, 8)), 'the secret in the message');
      return true;
    });
  }
  const corrupt = (hex: string) => `${(Number.parseInt(hex.slice(0, 2), 16) ^ 1).toString(16).padStart(2, '0')}${hex.slice(2)}`;

  test('known answer: any 2 of 3 hand-made shares give HKDF-SHA256 of the secret, in any order, with or without newlines', async () => {
    assert.equal(await key(three(X1, X2, '')), KEY);
    assert.equal(await key(three('', `${X3}\n`, Buffer.from(`${X1.toUpperCase()}\r\n`))), KEY);
    assert.equal(await key(three(X3, '', X2)), KEY);
    assert.equal(await key(three(X1, X2, X3), { ...SPEC, verify: VERIFY }), KEY, 'all three agree, verify matches');
  });

  test('shares from `split` (the library): any 3 of 5, and only salt/info change the key', async () => {
    const secret = randomBytes(32);
    const hex = await splitSecret(secret, 5, 3);
    assert.equal(hex.length, 5);
    const expected = Buffer.from(hkdfSync('sha256', secret, 's', 'i', 32)).toString('hex');
    const spec = { method: 'shamir', threshold: 3, salt: 's', info: 'i', verify: verifyValue(secret) } as const;
    const named = (vals: string[]) => vals.map((value, i) => ({ name: `s${i}`, value }));
    for (const drop of [[0, 1], [2, 4], [1, 3]]) {
      assert.equal(await key(named(hex.map((h, i) => (drop.includes(i) ? '' : h))), spec), expected);
    }
    assert.notEqual(await key(named(hex), { ...spec, salt: 't' }), expected);
  });

  test('fewer than threshold arrived → 69 naming which arrived and which did not', async () => {
    await refuses(three(X1, '', ''), SPEC, 69, /^psk identity "Client1": needs 2 of its 3 shares, 1 arrived \("share_a"\); not arrived: "share_b", "share_c"$/);
    await refuses(three('', '', ''), SPEC, 69, /0 arrived \(none\)/);
  });

  test('verify catches a corrupted or wrong share → 65 naming the identity', async () => {
    await refuses(three(corrupt(X1), X2, ''), { ...SPEC, verify: VERIFY }, 65, /^psk identity "Client1": shares "share_a", "share_b" combine to a secret that does not match verify/);
    await refuses(three(X1, X2, ''), { ...SPEC, verify: `sha256:${'0'.repeat(64)}` }, 65, /does not match verify/);
  });

  test('without verify, more than threshold shares must agree → 65', async () => {
    await refuses(three(X1, X2, corrupt(X3)), SPEC, 65, /^psk identity "Client1": share "share_c" does not agree with shares "share_a", "share_b"/);
    // With exactly threshold shares nothing can tell: that is what verify is for.
    assert.notEqual(await key(three(X1, corrupt(X2), '')), KEY);
  });

  test('malformed shares → 65 naming the share, never its bytes', async () => {
    await refuses(three(X1, `g${X2.slice(1)}`, ''), SPEC, 65, /share "share_b" is not hex \(character 1 of 66/);
    await refuses(three(X1, X2.slice(0, 65), ''), SPEC, 65, /share "share_b" must be an even number of hex digits, 34 to 2050 .* got 65/);
    await refuses(three(X1.slice(0, 32), X2.slice(0, 32), ''), SPEC, 65, /share "share_a" must be an even number.*got 32/);
    await refuses(three(X1, X2.slice(0, 64), ''), SPEC, 65, /share "share_b" is 32 bytes, share "share_a" 33: shares of one split have one length/);
    await refuses(three(X1, `${X2.slice(0, 64)}00`, ''), SPEC, 65, /share "share_b" has x coordinate 0/);
    await refuses(three(X1, X1, ''), SPEC, 65, /shares "share_a" and "share_b" have the same x coordinate/);
    await refuses(three(X1, '07'.repeat(33), ''), SPEC, 65, /share "share_b" is one byte repeated/);
  });

  test('the shape of the spec → 78', async () => {
    await refuses(three(X1, X2, X3), { ...SPEC, threshold: 1 }, 78, /threshold: a whole number from 2 to 255/);
    await refuses(three(X1, X2, X3), { ...SPEC, threshold: 4 }, 78, /threshold 4 needs at least 4/);
    await refuses(three(X1, X2, X3), { ...SPEC, salt: '' }, 78, /non-empty salt/);
    await refuses(three(X1, X2, X3), { ...SPEC, verify: 'sha256:abc' }, 78, /verify must be sha256: and 64 hex digits/);
    await refuses([{ name: 'a', value: X1 }, { name: 'a', value: X2 }], SPEC, 78, /"a" is listed twice/);
  });
});
