// PENDING (rename to test/integration/egress-e2e.test.ts at merge, once the listener engine
// reads `listeners:` and the pipeline hands the listeners tokenSourcesFor(config, log) and adds
// each bound listener's ListenerType.childEnv(config, address) to the program's env).
// The whole init (the bundle and a config) with an egress proxy and a metadata server, and an
// unmodified Python program that (1) calls a private service at http://HOST/ through HTTP_PROXY
// and (2) reads a secret with Google's client library through GCE_METADATA_*. Everything the
// init and the program printed is scanned for every token and for the secret.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startPrivateService, type PrivateService } from '../fakes/private-service.ts';
import { boot, type Boot } from '../helpers/boot.ts';
import { freePort } from '../helpers/net.ts';
import { createPki, type Pki } from '../helpers/pki.ts';
import { needs } from '../helpers/tools.ts';

const PYTHON = '/usr/bin/python3';
const HOST = 'hello-e2e.a.run.app';
const SECRET = 'projects/alice-proj/secrets/program-secret';

// The program: knows nothing of tokens. It prints its environment too, for the leak scan.
const PROGRAM = `
import base64, json, os, hashlib, requests
import google.auth, google.auth.transport.requests as tr
svc = requests.get('http://${HOST}/from-program').json()
creds, project = google.auth.default()
r = tr.AuthorizedSession(creds).get('http://127.0.0.1:%s/v1/${SECRET}/versions/latest:access' % os.environ['SM_PORT'])
r.raise_for_status()
data = base64.b64decode(r.json()['payload']['data'])
print(json.dumps({'service_email': svc['email'], 'project': project, 'secret_sha': hashlib.sha256(data).hexdigest(), 'env': dict(os.environ)}))
`;

describe('whole init: egress proxy and metadata server for an unmodified program', () => {
  let b: Boot;
  let pki: Pki;
  let service: PrivateService;
  let dir: string;
  const value = randomBytes(24).toString('hex');

  before(async () => {
    b = await boot();
    b.world.addSecret(SECRET, value);
    dir = mkdtempSync(join(tmpdir(), 'tee-init-e2e-pki-'));
    pki = createPki(dir, { serverSans: [`DNS:${HOST}`] });
    service = await startPrivateService({ url: `https://${HOST}`, cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key), jwks: b.world.gcp.googleKey.jwks });
  });
  after(async () => {
    await service?.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the program reaches the private service with an ID token and reads a secret as alice; nothing leaks', async (t) => {
    if (!needs(t, PYTHON, 'apt-get install python3-requests python3-google-auth')) return;
    const [egressPort, metadataPort] = [await freePort(), await freePort()];
    const config = b.config({
      log: { level: 'trace' },
      secrets: { service_ca: { source: 'file', path: pki.ca.cert } },
      listeners: {
        egress: {
          type: 'http-proxy', listen: `127.0.0.1:${egressPort}`, env: true,
          routes: [{ hosts: [HOST], token: { kind: 'id-token', credentials: 'alice' }, ca: 'service_ca', address: `127.0.0.1:${service.port}` }],
        },
        metadata: { type: 'metadata', listen: `127.0.0.1:${metadataPort}`, credentials: 'alice', env: true },
      },
      run: { command: [PYTHON, '-c', PROGRAM], env: { SM_PORT: String(b.world.gcp.port) } },
    });
    delete (config as Record<string, unknown>).output;
    const { proc, log } = b.start(config, ['--log-level', 'trace'], { HOME: dir });
    const result = await proc;
    assert.equal(result.exitCode, 0, log.text);
    const out = JSON.parse(String(result.stdout).trim().split('\n').at(-1)!);
    assert.equal(out.service_email, b.world.collaborators.alice.serviceAccount);
    assert.equal(out.project, 'alice-proj');
    assert.equal(out.secret_sha, (await import('node:crypto')).createHash('sha256').update(value).digest('hex'));
    assert.equal(out.env.HTTP_PROXY, `http://127.0.0.1:${egressPort}`);
    assert.equal(out.env.GCE_METADATA_HOST, `127.0.0.1:${metadataPort}`);

    // Leak scan: the ID token the service received, every access token (ya29.), the secret.
    const everything = `${result.stdout}\n${result.stderr}`;
    const idTokens = service.records.map((r) => r.authorization?.replace(/^Bearer /, '')).filter((v): v is string => !!v);
    assert.ok(idTokens.length > 0);
    for (const tok of idTokens) assert.ok(!everything.includes(tok.split('.')[2]!), 'an ID token was printed');
    assert.doesNotMatch(String(result.stderr), /ya29\./);
    assert.ok(!String(result.stderr).includes(value), 'the secret was logged');
  });
});
