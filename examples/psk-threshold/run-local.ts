// This example's 2-of-3 threshold PSK on one machine, with no cloud:
//   node examples/psk-threshold/run-local.ts   (after `npm ci && npm run build`; needs redis-server, openssl)
// A dealer splits a fresh random secret with `tee-init shares split --threshold 2 --shares 3
// --random`; alice and bob store their shares in the emulated Secret Manager; carol is down
// (her pool is not in the emulated world, so her identity is refused). The init boots from
// tee-init.yaml beside this file, skips carol's share with a warning naming her, combines the
// other two and serves TLS-PSK on 8081 in front of redis. The client's key comes from `tee-init
// shares combine --salt --info` on two shares; openssl s_client -psk then gets +PONG. Nothing
// secret is printed.
import { runLocal } from '../run-local-lib.ts';

await runLocal('Threshold TLS-PSK, 2 of 3 collaborators (examples/psk-threshold), carol down', async (l) => {
  const split = await l.run(process.execPath, [bundleArg(), 'shares', 'split', '--threshold', '2', '--shares', '3', '--random']);
  const [a, b, c] = split.split('\n').filter((line) => /^[0-9a-f]+$/.test(line));
  const verify = /^verify: (sha256:[0-9a-f]{64})$/m.exec(split)?.[1];
  if (!a || !b || !c || !verify) throw new Error('tee-init shares split printed no 3 shares and a verify line');
  l.say('tee-init shares split --threshold 2 --shares 3 --random: 3 shares and their verify value (not printed here)');
  const config = l.config('psk-threshold', (cfg) => {
    cfg.psk.identities.Client1.verify = verify;
    return ['psk.identities.Client1.verify  the value shares split printed (recommended: catches a wrong share)'];
  });
  l.serve(config, { share_a: `${a}\n`, share_b: `${b}\n`, share_c: null });
  l.say('alice and bob store their shares; carol stores nothing and her pool is unknown here: she is down');
  const init = l.boot('threshold', config);
  const skipped = await init.waitFor('share');
  l.say(`init: ${skipped.message}`);
  const listening = await init.waitFor('psk proxy listening');
  l.say(`init: listening on ${listening.listen} -> ${listening.connect}`);
  // The client's key from two shares, offline, as the README shows.
  const combined = await l.run(process.execPath, [bundleArg(), 'shares', 'combine', '--salt', 'my-app v1', '--info', 'redis'], { input: `${b}\n${c}\n` });
  const key = /^psk: ([0-9a-f]{64})$/m.exec(combined)?.[1];
  if (!key) throw new Error('tee-init shares combine printed no psk line');
  const pong = await l.converse('openssl', ['s_client', '-connect', '127.0.0.1:8081', '-psk', key, '-psk_identity', 'Client1', '-tls1_3', '-quiet'], 'PING\r\n', '+PONG');
  l.say(`openssl s_client -psk <bob's and carol's shares combined> -psk_identity Client1, PING -> ${pong}`);
  if (pong !== '+PONG') throw new Error(`redis answered ${pong}`);
  return 'the init combined alice\'s and bob\'s shares with carol down; a client holding the key from bob\'s and carol\'s shares got +PONG: any 2 of 3 give the same key.';
});

function bundleArg(): string {
  return process.env.TEE_INIT_BUNDLE ?? new URL('../../dist/tee-init.js', import.meta.url).pathname;
}
