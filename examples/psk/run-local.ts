// This example's two-collaborator TLS-PSK setup on one machine, with no cloud:
//   node examples/psk/run-local.ts        (after `npm ci && npm run build`; needs redis-server, redis-cli, openssl)
// The emulated Confidential Space (test/fakes) holds alice's and bob's shares. Two inits boot
// from tee-init.yaml beside this file (the token file, the endpoints and the output dir differ):
//   "server" TEE: the config as it is: redis-server on 127.0.0.1, the TLS-PSK listener on 8081;
//   "client" TEE: the same config in client mode: a plaintext listener whose connections leave
//                 as TLS-PSK to 8081 (and no redis of its own).
// Each fetches both shares with the collaborators' own identities and derives the same key;
// openssl s_client (the README's command) and redis-cli through the client init then talk to
// redis. Nothing is printed that is secret.
import { createHash } from 'node:crypto';
import { freePort } from '../../test/helpers/net.ts';
import { runLocal } from '../run-local-lib.ts';

const ALICE = '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90';
const BOB = 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2';
// It says when its SIGTERM handler is in place: a SIGTERM before that would end it with 143.
const IDLE = "process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1 << 30); console.log('idle program ready');";

await runLocal('Multiparty TLS-PSK (examples/psk), two TEEs on an emulated Confidential Space', async (l) => {
  const shares = { share_a: ALICE, share_b: BOB };
  const server = l.config('psk');
  l.serve(server, shares);
  const localPort = await freePort();
  const client = l.config('psk', (c) => {
    c.psk = { ...c.psk, mode: 'client', listen: `127.0.0.1:${localPort}`, connect: '127.0.0.1:8081' };
    // A program that waits and ends with 0 on SIGTERM (sleep would end with 143).
    c.run = { command: [process.execPath, '-e', IDLE] };
    return [
      `psk                   mode client, listen 127.0.0.1:${localPort}, connect 127.0.0.1:8081 (the server TEE)`,
      'run.command           an idle node program (the client TEE\'s own program is not the point here)',
    ];
  });
  for (const [name, path] of [['server', server], ['client', client]] as const) {
    const init = l.boot(name, path);
    const listening = await init.waitFor('psk proxy listening');
    l.say(`${name.padEnd(6)} init: ${listening.mode} mode, listening on ${listening.listen} -> ${listening.connect}`);
    if (name === 'client') await init.printed('idle program ready');
  }

  // The README's openssl command: the key is SHA-256 over the two shares, as hex.
  const key = createHash('sha256').update(ALICE + BOB).digest('hex');
  const direct = await l.converse('openssl', ['s_client', '-connect', '127.0.0.1:8081', '-psk', key, '-psk_identity', 'Client1', '-tls1_3', '-quiet'], 'PING\r\n', '+PONG');
  l.say(`\nopenssl s_client -psk … -psk_identity Client1 -connect 127.0.0.1:8081, PING -> ${direct}`);
  if (direct !== '+PONG') throw new Error(`redis answered ${direct}`);
  const cli = (...args: string[]) => l.run('redis-cli', ['-p', String(localPort), ...args]);
  const set = await cli('SET', 'greeting', 'hello through two TEEs');
  const get = await cli('GET', 'greeting');
  l.say(`redis-cli -p ${localPort} SET/GET -> ${set} / ${get}`);
  if (get !== 'hello through two TEEs') throw new Error(`redis answered ${get}`);
  return 'both inits derived the same key from alice\'s and bob\'s shares; redis answered through TLS-PSK.';
});
