// `tee-init shares split|combine` (issue 22, part 2): the real bundle, secrets and shares on
// stdin and stdout only, checked against the library-independent parts: sha256sum for verify,
// `openssl kdf` for the PSK a peer configures.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { runInit } from '../helpers/init.ts';
import { have } from '../helpers/tools.ts';

async function shares(args: string[], input?: string) {
  const { result, code } = await runInit(['shares', ...args], input === undefined ? {} : { input, stdin: undefined });
  return { code, stdout: result.stdout as string, stderr: result.stderr as string };
}

const flip = (hex: string) => `${hex[0] === '0' ? '1' : '0'}${hex.slice(1)}`;

test('split a secret from stdin 2 of 3: any 2 shares combine to it (verify = its sha256), the PSK is what openssl kdf derives', async (t) => {
  const secret = randomBytes(32).toString('hex');
  const split = await shares(['split', '--threshold', '2', '--shares', '3'], `${secret}\n`);
  assert.equal(split.code, 0, split.stderr);
  const lines = split.stdout.split('\n');
  assert.equal(lines.length, 4);
  for (const l of lines.slice(0, 3)) assert.match(l, /^[0-9a-f]{66}$/, 'a share: 32 bytes and the x coordinate');
  const verify = `sha256:${createHash('sha256').update(Buffer.from(secret, 'hex')).digest('hex')}`;
  assert.equal(lines[3], `verify: ${verify}`);

  for (const pair of [[0, 1], [1, 2], [2, 0]]) {
    const c = await shares(['combine', '--verify', verify], pair.map((i) => lines[i]).join('\n'));
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, `verify: ${verify}`, 'no key unless asked for');
  }
  const all = await shares(['combine', '--threshold', '2', '--salt', 'my-app v1', '--info', 'redis'], lines.slice(0, 3).join('\r\n'));
  assert.equal(all.code, 0, all.stderr);
  const psk = all.stdout.split('\n')[1]!;
  assert.match(psk, /^psk: [0-9a-f]{64}$/);
  if (!have('openssl')) return t.skip('openssl is not installed');
  const expected = execFileSync('openssl', ['kdf', '-keylen', '32', '-kdfopt', 'digest:SHA256', '-kdfopt', `hexkey:${secret}`, '-kdfopt', 'salt:my-app v1', '-kdfopt', 'info:redis', 'HKDF'], { encoding: 'utf8' });
  assert.equal(psk, `psk: ${expected.trim().replaceAll(':', '').toLowerCase()}`);
});

test('split --random: a fresh secret nobody typed; 3 of 5', async () => {
  const split = await shares(['split', '--threshold', '3', '--shares', '5', '--random']);
  assert.equal(split.code, 0, split.stderr);
  const lines = split.stdout.split('\n');
  assert.equal(lines.length, 6);
  const verify = lines[5]!.slice('verify: '.length);
  const c = await shares(['combine', '--verify', verify], [lines[4], lines[0], lines[2]].join('\n'));
  assert.equal(c.code, 0, c.stderr);
  const two = await shares(['combine', '--verify', verify], [lines[4], lines[0]].join('\n'));
  assert.equal(two.code, 65, 'two shares of a 3-of-5 split give another secret');
  assert.match(two.stderr, /^tee-init shares: shares combine: shares "line 1", "line 2" combine to a secret that does not match verify/);
});

test('combine catches a corrupted share: with --verify, and without it when more than the threshold agree on another', async () => {
  const split = await shares(['split', '--threshold', '2', '--shares', '3', '--random']);
  const [a, b, c, v] = split.stdout.split('\n') as [string, string, string, string];
  const verify = v.slice('verify: '.length);
  const caught = await shares(['combine', '--verify', verify], `${a}\n${flip(b)}\n`);
  assert.equal(caught.code, 65);
  assert.match(caught.stderr, /does not match verify/);
  const disagree = await shares(['combine', '--threshold', '2'], `${a}\n${b}\n${flip(c)}\n`);
  assert.equal(disagree.code, 65);
  assert.match(disagree.stderr, /share "line 3" does not agree with shares "line 1", "line 2"/);
  for (const out of [caught, disagree]) for (const s of [a, b, c]) assert.equal(out.stderr.includes(s.slice(2, 20)), false, 'no share bytes in messages');
});

for (const [args, input, code, pattern] of [
  [['split', '--shares', '3'], '', 64, /split needs --threshold T and --shares N/],
  [['split', '--threshold', '4', '--shares', '3'], '', 64, /--threshold 4 is more than --shares 3/],
  [['split', '--threshold', '1', '--shares', '3'], '', 64, /--threshold "1" must be a whole number from 2 to 255/],
  [['split', '--threshold', '2', '--shares', '3', '--secret', 'ab'], '', 64, /Unknown option '--secret'/],
  [['split', '--threshold', '2', '--shares', '3'], 'abcd\n', 65, /stdin must hold the secret as 32 to 2048 hex digits.*found 4 hex digits/],
  [['combine', '--salt', 'x'], '', 64, /--salt and --info go together/],
  [['combine', '--random'], '', 64, /--random goes with shares split/],
  [['combine'], 'ab\n', 65, /needs 2 shares on stdin/],
  [['mix'], '', 64, /write `tee-init shares split/],
] as const) {
  test(`shares ${args.join(' ')}: exit ${code}, one line`, async () => {
    const out = await shares([...args], input);
    assert.equal(out.code, code, out.stderr);
    assert.equal(out.stderr.trim().split('\n').length, 1, out.stderr);
    assert.match(out.stderr, pattern);
    assert.equal(out.stdout, '');
  });
}
