// This example on one machine, with no cloud:  node examples/redis/run-local.ts
// (after `npm ci && npm run build`; needs redis-server, redis-cli and openssl).
// The emulated Confidential Space (test/fakes) holds alice's server certificate and key and
// bob's client CA; tee-init boots from tee-init.yaml beside this file (only the token file,
// the endpoints and the output dir differ); redis-cli then talks mutual TLS to redis-server.
import { readFileSync } from 'node:fs';
import { runLocal } from '../run-local-lib.ts';

await runLocal('redis with mutual TLS (examples/redis), on an emulated Confidential Space', async (l) => {
  const pki = l.pki({ clientName: 'redis client of bob' });
  const config = l.config('redis');
  l.serve(config, { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) });
  const init = l.boot('redis', config);
  const started = await init.waitFor('run started');
  const ready = await init.waitFor('run ready');
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
  return 'redis served mutual TLS with alice\'s certificate and bob\'s CA, fetched by the init; a client without a certificate was refused.';
});
