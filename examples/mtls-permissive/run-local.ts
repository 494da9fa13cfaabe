// This example on one machine, with no cloud:  node examples/mtls-permissive/run-local.ts
// (after `npm ci && npm run build`; needs python3, curl and openssl).
// The emulated Confidential Space (test/fakes) holds alice's CA, server certificate and key;
// tee-init boots from tee-init.yaml beside this file. Besides the token file and the endpoints,
// one thing differs: the program is a small Python server on the same 127.0.0.1:8080 that
// answers with the headers it received (python3 -m http.server does not show them), so that
// what the listener sets in X-Forwarded-Client-Cert can be seen.
import { readFileSync } from 'node:fs';
import { runLocal } from '../run-local-lib.ts';
import { issue, leaf } from '../../test/helpers/pki.ts';

const ECHO_HEADERS = `
import http.server, json, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200); self.send_header('content-type', 'application/json'); self.send_header('content-length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
server = http.server.HTTPServer(('127.0.0.1', 8080), H)
print('echo server listening', flush=True)
server.serve_forever()
`;

await runLocal('Mutual TLS in permissive mode, with X-Forwarded-Client-Cert (examples/mtls-permissive), on an emulated Confidential Space', async (l) => {
  const pki = l.pki({ clientSans: ['URI:spiffe://alice.example/frontend'], clientName: 'frontend' });
  const stranger = issue(pki.dir, pki.ca, 'stranger', 'stranger', leaf('clientAuth', ['URI:spiffe://mallory.example/x']));
  const config = l.config('mtls-permissive', (c) => {
    const was = (c.run.command as string[]).join(' ');
    c.run.command = ['python3', '-c', ECHO_HEADERS];
    return [`run.command           a Python server on 127.0.0.1:8080 that echoes the request headers (was: ${was})`];
  });
  l.serve(config, { ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) });
  const init = l.boot('mtls-permissive', config);
  const listening = await init.waitFor('tls proxy listening');
  await init.printed('echo server listening');
  l.say(`\nlistener ${listening.listener ?? 'mesh-in'} listening on ${listening.listen}, program on 127.0.0.1:8080`);

  const curl = (...args: string[]) => l.run('curl', ['-sS', '--fail', '--max-time', '10', ...args]);
  const headers = (text: string) => JSON.parse(text) as Record<string, string>;
  const mtls = headers(await curl('--cacert', pki.ca.cert, '--cert', pki.client.cert, '--key', pki.client.key, '-H', 'X-Forwarded-Client-Cert: By=forged', 'https://localhost:8443/'));
  l.say(`curl --cert client.crt (spiffe://alice.example/frontend) https://localhost:8443/ -> x-forwarded-client-cert: ${mtls['x-forwarded-client-cert']}`);
  if (!mtls['x-forwarded-client-cert']?.includes('URI=spiffe://alice.example/frontend') || mtls['x-forwarded-client-cert'].includes('forged')) throw new Error('the program did not get the client\'s XFCC (or got the forged one)');
  const plain = headers(await curl('-H', 'X-Forwarded-Client-Cert: By=forged', 'http://localhost:8443/'));
  l.say(`curl http://localhost:8443/ (plaintext, permissive) -> 200, x-forwarded-client-cert: ${plain['x-forwarded-client-cert'] ?? '(none)'}`);
  if (plain['x-forwarded-client-cert'] !== undefined) throw new Error('a plaintext client\'s XFCC reached the program');
  const refused = await curl('--cacert', pki.ca.cert, '--cert', stranger.cert, '--key', stranger.key, 'https://localhost:8443/').then(() => 'served', () => 'refused');
  l.say(`curl --cert stranger.crt (spiffe://mallory.example/x) -> ${refused}`);
  if (refused !== 'refused') throw new Error('a client outside spiffe://alice.example/ was served');
  const sClient = await l.run('openssl', ['s_client', '-connect', '127.0.0.1:8443', '-servername', 'localhost', '-CAfile', pki.ca.cert, '-cert', pki.client.cert, '-key', pki.client.key, '-brief'], { input: '', all: true });
  l.say(`openssl s_client -cert client.crt -brief -> ${/Protocol version: (\S+)/.exec(sClient)?.[1] ?? '?'}, ${/Verification: (.*)/.exec(sClient)?.[1] ?? sClient}`);
  return 'mutual-TLS clients of the CA reached the program with their identity in X-Forwarded-Client-Cert, plaintext clients got through without one, forged headers were dropped, a stranger was refused.';
});
