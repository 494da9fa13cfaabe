// This example on one machine, with no cloud:  node examples/redis/run-local.ts
// (after `npm ci && npm run build`; needs redis-server, redis-cli and openssl).
// The emulated Confidential Space (test/fakes) holds alice's server certificate and key and
// bob's client CA; tee-init boots from tee-init.yaml beside this file (only the token file,
// the endpoints and the output dir differ); redis-cli then talks mutual TLS to redis-server.
// Then a rotation by hand: a new certificate version, SIGHUP, and the same redis serves it.
import { readFileSync } from 'node:fs';
import { issue, leaf } from '../../test/helpers/pki.ts';
import { runLocal } from '../run-local-lib.ts';

await runLocal('redis with mutual TLS (examples/redis), on an emulated Confidential Space', async (l) => {
  const pki = l.pki({ clientName: 'redis client of bob' });
  const config = l.config('redis');
  l.serve(config, { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) });
  const init = l.boot('redis', config);
  const started = await init.waitFor('child started');
  const ready = await init.waitFor('child ready');
  l.say(`\ntee-init started ${(started.command as string[]).slice(0, 3).join(' ')} … (pid ${started.pid}), ready: ${ready.check}`);

  const tls = ['--tls', '--cacert', pki.ca.cert, '-h', '127.0.0.1', '-p', '16379'];
  const mtls = [...tls, '--cert', pki.client.cert, '--key', pki.client.key];
  const set = await l.run('redis-cli', [...mtls, 'SET', 'greeting', 'hello from a TEE']);
  const get = await l.run('redis-cli', [...mtls, 'GET', 'greeting']);
  l.say(`redis-cli --tls --cert client.crt … SET/GET greeting -> ${set} / ${get}`);
  if (get !== 'hello from a TEE') throw new Error(`redis answered ${get}`);
  const anonymous = await l.run('redis-cli', [...tls, 'PING']).catch((err: Error) => `refused (${/([^:]*)$/.exec(err.message)![1]!.trim()})`);
  l.say(`redis-cli --tls without a client certificate -> ${anonymous}`);
  if (anonymous === 'PONG') throw new Error('redis served a client without a certificate');

  // Rotation by hand: alice uploads a new certificate and key; SIGHUP makes the init read now
  // (it would at the next `refresh.every`), and the preset hands them to redis (CONFIG SET).
  const renewed = issue(pki.dir, pki.ca, 'renewed', 'redis server, renewed', leaf('serverAuth', ['DNS:localhost', 'IP:127.0.0.1']));
  l.rotate(config, { cert: readFileSync(renewed.cert), key: readFileSync(renewed.key) });
  const rotatedFrom = init.log.records.length;
  init.proc.kill('SIGHUP');
  const rotated = await init.waitFor('refresh: rotated');
  if (init.log.records.indexOf(rotated) < rotatedFrom) throw new Error('no rotation after the SIGHUP');
  l.say(`\nalice uploads a renewed certificate and key, SIGHUP -> ${rotated.message}`);
  const session = await l.converse('openssl', ['s_client', '-connect', '127.0.0.1:16379', '-servername', 'localhost', '-CAfile', pki.ca.cert, '-cert', pki.client.cert, '-key', pki.client.key], 'PING\r\n', '+PONG');
  const subject = /^subject=(.*)$/m.exec(session)?.[1] ?? '?';
  l.say(`openssl s_client -cert client.crt, PING -> +PONG from a server whose certificate is ${subject}`);
  if (!subject.includes('renewed')) throw new Error(`redis still serves ${subject}`);
  return 'redis served mutual TLS with alice\'s certificate and bob\'s CA, fetched by the init; a client without a certificate was refused; a renewed certificate reached redis without a restart.';
});
