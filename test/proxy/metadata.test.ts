// The metadata listener serving Google's own client libraries in a child process: Node's
// google-auth-library (with @google-cloud/secret-manager) and Debian's Python google-auth 1.5,
// each reading a secret from the fake Secret Manager as alice's service account, and Node also
// calling the private service with an ID token from /identity. Plus the protocol's guards.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import type { ListenerHandle } from '../../src/proxy/listener.ts';
import { metadataEnv, metadataSchema } from '../../src/config/listeners/metadata.ts';
import { metadataType } from '../../src/proxy/types/metadata/type.ts';
import { identityBench, SERVICE_HOST, type IdentityBench } from '../helpers/egress.ts';
import { fileURLToPath } from 'node:url';
import { needs } from '../helpers/tools.ts';
import { trickle } from '../helpers/net.ts';

const PYTHON = '/usr/bin/python3';
const SECRET = 'projects/alice-proj/secrets/egress-secret';

const NODE_CHILD = `
import { GoogleAuth } from 'google-auth-library';
import { SecretManagerServiceClient } from '@google-cloud/secret-manager';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
const client = await auth.getClient();
const projectId = await auth.getProjectId();
const sm = new SecretManagerServiceClient({ apiEndpoint: '127.0.0.1', port: Number(process.env.SM_PORT), protocol: 'http', fallback: true });
const [v] = await sm.accessSecretVersion({ name: process.env.SECRET + '/versions/latest' });
const sha = createHash('sha256').update(v.payload.data).digest('hex');
const idc = await auth.getIdTokenClient('https://${SERVICE_HOST}');
const headers = await idc.getRequestHeaders();
const authz = headers.get ? headers.get('authorization') : headers.Authorization;
const service = await new Promise((resolve, reject) => {
  const r = request({ host: '127.0.0.1', port: Number(process.env.SERVICE_PORT), servername: '${SERVICE_HOST}', path: '/from-node', ca: readFileSync(process.env.CA_FILE),
    headers: { host: '${SERVICE_HOST}', authorization: authz } }, (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => resolve({ status: res.statusCode, body: b })); });
  r.on('error', reject); r.end();
});
console.log(JSON.stringify({ type: client.constructor.name, projectId, email: (await auth.getCredentials()).client_email, sha, service }));
`;

const PYTHON_CHILD = `
import base64, hashlib, json, os
import google.auth
import google.auth.transport.requests as tr
creds, project = google.auth.default()
s = tr.AuthorizedSession(creds)
r = s.get('http://127.0.0.1:%s/v1/%s/versions/latest:access' % (os.environ['SM_PORT'], os.environ['SECRET']))
r.raise_for_status()
data = base64.b64decode(r.json()['payload']['data'])
print(json.dumps({'type': type(creds).__name__, 'project': project, 'email': creds.service_account_email, 'sha': hashlib.sha256(data).hexdigest()}))
`;

describe('metadata listener with Google client libraries in the child', () => {
  let b: IdentityBench;
  let alice: ListenerHandle;
  let bob: ListenerHandle;
  let env: Record<string, string>;
  const value = randomBytes(32).toString('hex');
  const sha = createHash('sha256').update(value).digest('hex');

  before(async () => {
    b = await identityBench();
    b.world.addSecret(SECRET, value);
    mkdirSync(join(b.pki.dir, 'home'));
    const config = metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'alice', env: true });
    alice = await metadataType.start(config, b.env('metadata'));
    bob = await metadataType.start(metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'bob' }), b.env('metadata-bob'));
    env = {
      PATH: process.env.PATH!,
      HOME: join(b.pki.dir, 'home'), // no gcloud config, no ADC file to find first (removed with the bench)
      NO_PROXY: '127.0.0.1,localhost',
      ...metadataType.childEnv!(config, alice.address),
      SM_PORT: String(b.world.gcp.port),
      SECRET,
      SERVICE_PORT: String(b.service.port),
      CA_FILE: b.pki.ca.cert,
    };
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await b?.close();
  });

  const get = (h: ListenerHandle, path: string, headers: Record<string, string> = { 'Metadata-Flavor': 'Google' }) =>
    fetch(`http://127.0.0.1:${h.address.port}${path}`, { headers });

  test('Node google-auth-library: Compute credentials, project, a secret as alice, an ID token the private service accepts', async () => {
    // No PATH: the library would run `gcloud config config-helper` (seconds) before asking the metadata server.
    const r = await execa(process.execPath, ['--input-type=module', '-e', NODE_CHILD], { cwd: fileURLToPath(new URL('../..', import.meta.url)), env: { ...env, PATH: '/nonexistent' }, extendEnv: false, reject: false, timeout: 60_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.type, 'Compute');
    assert.equal(out.projectId, 'alice-proj');
    assert.equal(out.email, b.world.collaborators.alice.serviceAccount);
    assert.equal(out.sha, sha);
    assert.equal(out.service.status, 200, out.service.body);
    assert.equal(JSON.parse(out.service.body).email, b.world.collaborators.alice.serviceAccount);
    const sm = b.world.gcp.requestsOf('sm').at(-1)!;
    assert.equal(sm.principal, `serviceAccount:${b.world.collaborators.alice.serviceAccount}`);
  });

  test('Python google-auth 1.5 (Debian): detected as GCE, reads a secret as alice', async (t) => {
    if (!needs(t, PYTHON, 'apt-get install python3-google-auth python3-requests')) return;
    const r = await execa(PYTHON, ['-c', PYTHON_CHILD], { env, extendEnv: false, reject: false, timeout: 60_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { type: 'Credentials', project: 'alice-proj', email: b.world.collaborators.alice.serviceAccount, sha });
  });

  test('Metadata-Flavor required, X-Forwarded-For refused, 404 for paths not served; the header on every answer', async () => {
    const token = '/computeMetadata/v1/instance/service-accounts/default/token';
    const missing = await get(alice, token, {});
    assert.equal(missing.status, 403);
    assert.match(await missing.text(), /Metadata-Flavor/);
    const relayed = await get(alice, token, { 'Metadata-Flavor': 'Google', 'X-Forwarded-For': '10.0.0.1' });
    assert.equal(relayed.status, 403);
    const wrong = await get(alice, token, { 'Metadata-Flavor': 'Amazon' });
    assert.equal(wrong.status, 403);
    for (const p of ['/computeMetadata/v1/instance/zone', '/computeMetadata/v1/instance/service-accounts/other@x.iam.gserviceaccount.com/token', '/latest/meta-data/', '/computeMetadata/v1/instance/service-accounts/default/tokenx']) {
      const r = await get(alice, p);
      assert.equal(r.status, 404, p);
      assert.equal(r.headers.get('metadata-flavor'), 'Google');
    }
    const post = await fetch(`http://127.0.0.1:${alice.address.port}${token}`, { method: 'POST', headers: { 'Metadata-Flavor': 'Google' } });
    assert.equal(post.status, 405);
    assert.ok(alice.stats().metadata_refused_total! >= 4);
  });

  test('token, email, scopes, project, identity: formats as on GCE', async () => {
    const t = await get(alice, '/computeMetadata/v1/instance/service-accounts/default/token');
    assert.equal(t.headers.get('content-type'), 'application/json');
    assert.equal(t.headers.get('metadata-flavor'), 'Google');
    const tok = (await t.json()) as { access_token: string; expires_in: number; token_type: string };
    assert.equal(tok.token_type, 'Bearer');
    assert.match(tok.access_token, /^ya29\./);
    assert.ok(tok.expires_in > 3000 && tok.expires_in <= 3600, String(tok.expires_in));
    const email = b.world.collaborators.alice.serviceAccount!;
    assert.equal(await (await get(alice, '/computeMetadata/v1/instance/service-accounts/default/email')).text(), email);
    assert.equal(await (await get(alice, `/computeMetadata/v1/instance/service-accounts/${email}/email`)).text(), email);
    assert.equal(await (await get(alice, '/computeMetadata/v1/instance/service-accounts/default/scopes')).text(), 'https://www.googleapis.com/auth/cloud-platform\n');
    assert.equal(await (await get(alice, '/computeMetadata/v1/project/project-id')).text(), 'alice-proj');
    assert.equal(await (await get(alice, '/computeMetadata/v1/project/numeric-project-id')).text(), '111');
    assert.equal(await (await get(alice, '/computeMetadata/v1/project/project-id?alt=json')).text(), '"alice-proj"');
    const rec = await get(alice, '/computeMetadata/v1/instance/service-accounts/default/?recursive=true');
    assert.deepEqual(await rec.json(), { aliases: ['default'], email, scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
    const scoped = await get(alice, '/computeMetadata/v1/instance/service-accounts/default/token?scopes=https://www.googleapis.com/auth/cloud-platform,https://www.googleapis.com/auth/userinfo.email');
    assert.equal(((await scoped.json()) as { access_token: string }).access_token, tok.access_token, 'the token of the configured scopes, whatever ?scopes= asks');
    const noAud = await get(alice, '/computeMetadata/v1/instance/service-accounts/default/identity');
    assert.equal(noAud.status, 400);
    const id = await get(alice, '/computeMetadata/v1/instance/service-accounts/default/identity?audience=https://aud.example&format=full');
    const claims = await b.world.gcp.googleKey.verify(await id.text(), { audience: 'https://aud.example' });
    assert.equal(claims.email, email);
  });

  test('?scopes= and ?audience= the program makes up do not grow the init: one access token per listener, bounded audiences', async () => {
    const before = b.tokens.stats();
    const token = '/computeMetadata/v1/instance/service-accounts/default/token';
    for (let i = 0; i < 300; i++) {
      const r = await get(alice, `${token}?scopes=${i}-${'s'.repeat(4096)}`);
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    }
    const after = b.tokens.stats();
    assert.equal(after.sources, before.sources, 'no token source per scope list');
    assert.equal(after.mints, before.mints, 'nothing minted at Google for them');
    assert.equal(after.cached, before.cached);
    assert.match(b.logs.text(), /a client asked \(\?scopes=\) for 1 scope\(s\) not in listeners\.metadata\.scopes/);
    // An audience is a cache key and a mint: a bounded, printable one.
    const identity = '/computeMetadata/v1/instance/service-accounts/default/identity?audience=';
    for (const aud of ['a'.repeat(4096), 'https://x.example/%0d%0aX-Injected:%201', 'has%20space']) {
      const r = await get(alice, `${identity}${aud}`);
      assert.equal(r.status, 400, aud.slice(0, 40));
      assert.match(await r.text(), /audience must be 1-512 printable characters/);
    }
    assert.equal(b.tokens.stats().cached, before.cached);
    assert.equal(alice.stats().connection_faults_total, 0);
  });

  test('a request target the URL parser refuses (//, http://[) is a 400, not a fault', async () => {
    for (const target of ['//', 'http://[']) {
      const socket = connect({ host: '127.0.0.1', port: alice.address.port });
      socket.end(`GET ${target} HTTP/1.1\r\nHost: metadata\r\nMetadata-Flavor: Google\r\nConnection: close\r\n\r\n`);
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      await once(socket, 'close');
      assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1.1 400 [\s\S]*the request target is not a URL path/, target);
    }
    assert.equal(alice.stats().connection_faults_total, 0);
  });

  test('a client trickling header lines is cut at headersTimeout (408)', async () => {
    const slow = await metadataType.start(metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'alice', headersTimeout: '1s' }), b.env('metadata-slow'));
    try {
      const answer = await trickle(slow.address.port, 'GET /computeMetadata/v1/ HTTP/1.1\r\nHost: metadata\r\n');
      assert.match(answer, /^HTTP\/1.1 408/);
    } finally {
      await slow.close();
    }
  });

  test('a token failure reaches the program as printable text only (a remote answer may hold escapes)', async () => {
    const env = { ...b.env('metadata-failing'), tokens: { source: () => ({ get: async () => { throw new Error('upstream said \u001b[31mred\u0007\r\nX-Evil: 1'); } }), account: () => ({}) } };
    const failing = await metadataType.start(metadataSchema.parse({ type: 'metadata', listen: '127.0.0.1:0', credentials: 'alice' }), env);
    try {
      const r = await get(failing, '/computeMetadata/v1/instance/service-accounts/default/token');
      assert.equal(r.status, 503);
      const body = await r.text();
      assert.match(body, /^could not get a token for credentials alice: upstream said \?\[31mred\?/);
      assert.doesNotMatch(body.trimEnd(), /[^\x20-\x7e]/, 'no control byte reaches the program');
    } finally {
      await failing.close();
    }
  });

  test('a credential without a service account: access tokens yes; no email, no ID tokens (404, as a VM without one)', async () => {
    const t = await get(bob, '/computeMetadata/v1/instance/service-accounts/default/token');
    assert.equal(t.status, 200);
    assert.equal((await get(bob, '/computeMetadata/v1/instance/service-accounts/default/email')).status, 404);
    assert.equal((await get(bob, '/computeMetadata/v1/instance/service-accounts/default/identity?audience=x')).status, 404);
    assert.equal(await (await get(bob, '/computeMetadata/v1/project/numeric-project-id')).text(), '222');
  });

  test('the schema: loopback only, a credential name', () => {
    assert.match(JSON.stringify(metadataSchema.safeParse({ type: 'metadata', listen: '0.0.0.0:80', credentials: 'alice' }).error?.issues), /loopback/);
    assert.match(JSON.stringify(metadataSchema.safeParse({ type: 'metadata', listen: '127.0.0.1:80' }).error?.issues), /credentials/);
    assert.deepEqual(metadataEnv({ env: true }, { host: '127.0.0.1', port: 8999 }), { GCE_METADATA_HOST: '127.0.0.1:8999', GCE_METADATA_IP: '127.0.0.1:8999', GCE_METADATA_ROOT: '127.0.0.1:8999' });
  });

  test('no token in the log', () => {
    const text = b.logs.text();
    assert.ok(text.includes('metadata'));
    assert.doesNotMatch(text, /ya29\.|eyJhbGci/);
  });
});
