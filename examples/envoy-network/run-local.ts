// This example on one machine, with no cloud:  node examples/envoy-network/run-local.ts
// (after `npm ci && npm run build`; needs openssl; Envoy for the real run).
// Always: `tee-init check --show` on tee-init.yaml beside this file, as the README shows it
// (users from etc/ here, as the image's /etc has them), and the rendered bootstrap and SDS
// files through the Envoy schema validator. With `envoy` on PATH, also the real run: the
// emulated Confidential Space (test/fakes) holds the certificates, tee-init starts the backend
// (here a TCP echo server in place of /app/backend) and, once it accepts, Envoy in front of it;
// openssl s_client with a client certificate of bob's CA (etl@bob.example) gets its line echoed.
import { readFileSync } from 'node:fs';
import { have } from '../../test/helpers/tools.ts';
import { checkEnvoyExample, withoutMissingUsers } from '../envoy-check.ts';
import { runLocal } from '../run-local-lib.ts';

const ECHO = "require('node:net').createServer((s) => s.pipe(s)).listen(5432, '127.0.0.1'); process.on('SIGTERM', () => process.exit(0));";

await runLocal('Envoy network filter with mutual TLS, and its backend (examples/envoy-network), on an emulated Confidential Space', async (l) => {
  await checkEnvoyExample(l, 'envoy-network', '/dev/shm/tee-init');
  if (!have('envoy')) return 'check --show and the Envoy validator passed. Envoy is not installed here: the real run was left out (put envoy on PATH to run it).';

  const pki = l.pki({ clientSans: ['email:etl@bob.example'], clientName: 'etl' });
  const config = l.config('envoy-network', (c) => {
    const was = (c.processes.backend.command as string[]).join(' ');
    c.processes.backend.command = [process.execPath, '-e', ECHO];
    return [`processes.backend.command  a TCP echo server (node) on 127.0.0.1:5432 (was: ${was})`, ...withoutMissingUsers(c)];
  });
  l.serve(config, { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) });
  const init = l.boot('envoy-network', config);
  const ready = await init.waitFor('all units ready', 60_000);
  l.say(`\nunits ${(ready.units as string[]).join(', ')} ready in ${ready.ms} ms`);
  const line = 'hello through Envoy';
  const out = await l.converse('openssl', ['s_client', '-connect', '127.0.0.1:5433', '-servername', 'localhost', '-CAfile', pki.ca.cert,
    '-cert', pki.client.cert, '-key', pki.client.key, '-verify_return_error', '-quiet'], `${line}\n`, line);
  l.say(`openssl s_client -cert client.crt (etl@bob.example) -connect 127.0.0.1:5433, sent "${line}" -> ${out}`);
  if (!out.includes(line)) throw new Error('the backend\'s echo did not come back through Envoy');
  return 'tee-init started the backend, then Envoy once the backend accepted; a client of bob\'s CA reached the backend through mutual TLS.';
});
