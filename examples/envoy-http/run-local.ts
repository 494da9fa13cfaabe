// This example on one machine, with no cloud:  node examples/envoy-http/run-local.ts
// (after `npm ci && npm run build`; needs openssl; Envoy and curl for the real run).
// Always: `tee-init check --show` on tee-init.yaml beside this file, as the README shows it
// (users from etc/ here, as the image's /etc has them), and the rendered bootstrap and SDS
// files through the Envoy schema validator. With `envoy` on PATH, also the real run: the
// emulated Confidential Space (test/fakes) holds alice's certificate and key and bob's client
// CA, tee-init boots Envoy from the same config (token file, endpoints and output dir differ),
// a stand-in service listens on 127.0.0.1:8080, and curl with a client certificate of bob's
// CA (URI spiffe://bob.example/analytics) gets through; one without a listed SAN does not.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { have } from '../../test/helpers/tools.ts';
import { issue, leaf } from '../../test/helpers/pki.ts';
import { checkEnvoyExample, withoutMissingUsers } from '../envoy-check.ts';
import { runLocal } from '../run-local-lib.ts';

await runLocal('Envoy HTTP filter with mutual TLS (examples/envoy-http), on an emulated Confidential Space', async (l) => {
  await checkEnvoyExample(l, 'envoy-http', '/dev/shm/tee-init');
  if (!have('envoy')) return 'check --show and the Envoy validator passed. Envoy is not installed here: the real run was left out (put envoy on PATH to run it).';

  const pki = l.pki({ clientSans: ['URI:spiffe://bob.example/analytics'], clientName: 'analytics' });
  const stranger = issue(pki.dir, pki.ca, 'stranger', 'stranger', leaf('clientAuth', ['URI:spiffe://bob.example/other']));
  // The service Envoy routes to (the README: started by other means in the same container).
  const service = createServer((req, res) => res.end(JSON.stringify({ xfcc: req.headers['x-forwarded-client-cert'] ?? null })));
  service.listen(8080, '127.0.0.1');
  await once(service, 'listening');
  try {
    const config = l.config('envoy-http', withoutMissingUsers);
    l.serve(config, { client_ca: readFileSync(pki.ca.cert), server_cert: readFileSync(pki.server.cert), server_key: readFileSync(pki.server.key) });
    const init = l.boot('envoy-http', config);
    await init.waitFor('child started');
    await l.port(8443);
    const curl = (cert: string, key: string) => l.run('curl', ['-sS', '--fail', '--max-time', '10', '--cacert', pki.ca.cert, '--cert', cert, '--key', key, 'https://localhost:8443/']);
    const answer = JSON.parse(await curl(pki.client.cert, pki.client.key)) as { xfcc: string | null };
    l.say(`\ncurl --cert client.crt (spiffe://bob.example/analytics) https://localhost:8443/ -> the service saw x-forwarded-client-cert: ${answer.xfcc}`);
    if (!answer.xfcc?.includes('URI=spiffe://bob.example/analytics')) throw new Error('the service did not get the client\'s identity');
    const other = await curl(stranger.cert, stranger.key).then(() => 'served', () => 'refused');
    l.say(`curl --cert stranger.crt (spiffe://bob.example/other) -> ${other}`);
    if (other !== 'refused') throw new Error('Envoy served a client outside sanMatch');
    return 'Envoy, rendered and supervised by tee-init, served mutual TLS with alice\'s certificate, let in only the SAN the config lists, and told the service who called.';
  } finally {
    service.close();
  }
});
