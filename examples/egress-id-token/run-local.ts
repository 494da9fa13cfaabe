// This example on one machine, with no cloud:  node examples/egress-id-token/run-local.ts
// (after `npm ci && npm run build`; needs openssl and Python 3 with google-auth and requests:
// apt-get install python3-google-auth python3-requests).
// The emulated Confidential Space (test/fakes) stands in for alice's pool and her service
// account tee-caller@; two loopback https services stand in for her private Cloud Run service
// (it checks the Google-signed ID token, as Cloud Run's front door does) and her verifier (it
// checks the attestation token). tee-init boots from tee-init.yaml beside this file; the program
// (in place of /app/server) is an unmodified Python script that calls http://HOST/ through
// HTTP_PROXY and gets alice's identity from google-auth (and an ID token) through GCE_METADATA_HOST.
import { existsSync, readFileSync } from 'node:fs';
import { runLocal } from '../run-local-lib.ts';
import { ISSUER } from '../../test/fakes/attestation.ts';
import { GOOGLE_ISSUER } from '../../test/fakes/iamcredentials.ts';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { startPrivateService } from '../../test/fakes/private-service.ts';

const HELLO = 'hello-abc123-uc.a.run.app';
const ORDERS = 'orders-abc123-uc.a.run.app';
const VERIFIER = 'verifier.alice.example';
// Debian's python3 has python3-google-auth; another python3 first on PATH may not.
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

// The program knows nothing of tokens or proxies: plain http:// URLs and google.auth.default().
const PROGRAM = `
import json, os, requests
import google.auth, google.auth.transport.requests as tr
hello = requests.get('http://${HELLO}/from-the-program').json()
verifier = requests.get('http://${VERIFIER}/v1/attest').json()
other = requests.get('http://unlisted.example/')
creds, project = google.auth.default()
creds.refresh(tr.Request())
# What google.oauth2.id_token.fetch_id_token asks the metadata server (older google-auth lacks it).
token = requests.get('http://%s/computeMetadata/v1/instance/service-accounts/default/identity' % os.environ['GCE_METADATA_HOST'],
  params={'audience': 'https://${ORDERS}', 'format': 'full'}, headers={'Metadata-Flavor': 'Google'}).text
print(json.dumps({'hello': hello['email'], 'verifier': verifier['email'], 'project': project, 'account': creds.service_account_email, 'idToken': token, 'other': [other.status_code, other.headers.get('x-tee-init-reason')]}))
`;

await runLocal('An unmodified program calls private services as alice (examples/egress-id-token), on an emulated Confidential Space', async (l) => {
  const pki = l.pki({ serverSans: [`DNS:${HELLO}`, `DNS:${ORDERS}`, `DNS:${VERIFIER}`] });
  const tls = { cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) };
  const hello = await startPrivateService({ url: `https://${HELLO}`, audiences: [`https://${ORDERS}`], jwks: l.world.gcp.googleKey.jwks, ...tls });
  const verifier = await startPrivateService({ url: `https://${VERIFIER}`, issuer: ISSUER, jwks: l.world.key.jwks, ...tls });
  try {
    const config = l.config('egress-id-token', (c) => {
      const was = (c.run.command as string[]).join(' ');
      c.secrets = { service_ca: { source: 'file', path: pki.ca.cert } };
      const to = (host: string) => (host === VERIFIER ? verifier.port : hello.port);
      for (const route of c.listeners.egress.routes) Object.assign(route, { address: `127.0.0.1:${to(route.hosts[0])}`, ca: 'service_ca' });
      c.run.command = [PYTHON, '-c', PROGRAM];
      return [
        `listeners.egress.routes[*].address  the loopback services (${HELLO}, ${ORDERS} -> 127.0.0.1:${hello.port}; ${VERIFIER} -> 127.0.0.1:${verifier.port})`,
        'listeners.egress.routes[*].ca       service_ca: the throwaway CA of those services (secrets.service_ca, a file)',
        `run.command           a Python program using requests and google-auth (was: ${was})`,
      ];
    });
    const account = (JSON.parse(readFileSync(config, 'utf8')) as { credentials: { alice: { serviceAccount: string } } }).credentials.alice.serviceAccount;
    l.world.addServiceAccount(account);
    // google.auth.default() prefers a developer's own credentials to the metadata server.
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    const init = l.boot('egress-id-token', config, { env: { HOME: l.dir, CLOUDSDK_CONFIG: `${l.dir}/gcloud` } });
    const result = await init.proc;
    if (result.exitCode !== 0) throw new Error(`the program failed (${result.exitCode}):\n${String(result.stdout)}\n${init.log.text}`);
    const out = JSON.parse(String(result.stdout).trim().split('\n').at(-1)!) as Record<string, any>;
    const row = (left: string, right: string) => l.say(`${left.padEnd(58)} -> ${right}`);
    l.say();
    row(`requests.get('http://${HELLO}/…')`, `via HTTP_PROXY, the service saw an ID token of ${out.hello}`);
    row(`requests.get('http://${VERIFIER}/v1/attest')`, `the verifier saw an attestation token of ${out.verifier.slice(0, 30)}…`);
    row(`requests.get('http://unlisted.example/')`, `${out.other[0]} (X-Tee-Init-Reason: ${out.other[1]})`);
    if (out.other[0] !== 403) throw new Error(`a host no route lists got ${out.other[0]}`);
    row('google.auth.default() (GCE_METADATA_HOST)', `${out.account}, project ${out.project}`);
    // The ID token the program got is checked here as a relying party would (never printed).
    const { payload: id } = await jwtVerify(out.idToken, createLocalJWKSet(l.world.gcp.googleKey.jwks), { issuer: GOOGLE_ISSUER, audience: `https://${ORDERS}` });
    row(`metadata …/identity?audience=https://${ORDERS}`, `an ID token signed by Google's (fake) key, email ${id.email}, aud ${id.aud}`);
    if (out.hello !== account || out.account !== account || id.email !== account) throw new Error(`not alice's ${account}: ${JSON.stringify(out)}`);
    if (!out.verifier.startsWith(`image ${l.world.imageDigest}`)) throw new Error(`the verifier saw ${out.verifier}`);
    return `the program reached alice's private services with ID tokens and an attestation token it never handled, and google-auth found ${account} on the metadata server.`;
  } finally {
    await hello.close();
    await verifier.close();
  }
});
