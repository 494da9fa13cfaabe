// `npm run serve-world -- [options]`: the emulated Confidential Space as a tool, to boot your own
// config against it and try rotation by hand. See HELP below and test/fakes/README.md.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { GOOGLE_ISSUER, GOOGLE_CERTS_PATH } from './iamcredentials.ts';
import { ATTESTATION_JWKS_PATH } from './gcp.ts';
import { closeServer, listenLoopback, readBody, replyJson } from './http.ts';
import type { VersionState } from './gcp.ts';
import { EXAMPLE_PROJECT_NUMBERS, poolMembers, startWorld, type EmulatedWorld } from './world.ts';

const HELP = `serve-world: an emulated Confidential Space on loopback, until Ctrl-C

  npm run serve-world -- [--port N] [--control-port N] [--secret NAME=FILE ...] [--no-teeserver] [--json]

Serves STS, IAM credentials and Secret Manager (Google's paths and wire formats, plain http on
127.0.0.1), the launcher's teeserver socket, and a signed attestation token in a file (re-signed
every 10 minutes, as the launcher refreshes it). Two collaborators: alice (projects/111111111111,
reads through tee-reader@alice-proj.iam.gserviceaccount.com; tee-caller@ and congrats-caller@ are
there too) and bob (projects/222222222222, direct access): the project numbers the examples'
configs name. Prints a YAML block to paste into a config, and every URL it serves.

Options
  --port N            the Google APIs' port (default: a free one)
  --control-port N    the control endpoint's port (default: a free one)
  --secret NAME=FILE  serve FILE as version 1 of NAME (projects/P/secrets/S); repeatable; readable
                      by its project's collaborator. Without any, a few placeholders are served.
  --no-teeserver      no teeserver socket (custom-audience tokens then fail, as off Confidential Space)
  --json              print one JSON line instead of the YAML block and the URL list
  -h, --help          this text

Control endpoint (plain http on 127.0.0.1, for trying rotation; the data never comes back):
  GET  /secrets                                        every secret: its versions' states and sizes
  POST /secrets/versions?secret=NAME                   the body is a new version (the new latest);
                                                       creates the secret if it is new
  POST /secrets/state?secret=NAME&version=N&state=S    S: ENABLED, DISABLED or DESTROYED
  POST /token                                          re-sign the token file now
e.g.  curl --data-binary @new-ca.pem 'http://127.0.0.1:PORT/secrets/versions?secret=projects/bob-proj/secrets/ca'
      curl -X POST 'http://127.0.0.1:PORT/secrets/state?secret=projects/bob-proj/secrets/ca&version=2&state=DISABLED'
then send tee-init SIGHUP (with refresh:) to read them again.`;

const EXTRA_ACCOUNTS = ['tee-caller@alice-proj.iam.gserviceaccount.com', 'congrats-caller@alice-proj.iam.gserviceaccount.com'];
const STATES: readonly VersionState[] = ['ENABLED', 'DISABLED', 'DESTROYED'];
const TOKEN_REFRESH_MS = 10 * 60_000;

function usage(message: string): never {
  console.error(`serve-world: ${message} (see --help)`);
  process.exit(64);
}

function port(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) usage(`--${name} wants a port number (1-65535), got ${JSON.stringify(value)}`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: 'string' },
      'control-port': { type: 'string' },
      secret: { type: 'string', multiple: true, default: [] },
      'no-teeserver': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (err) {
  usage((err as Error).message);
}
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const secrets = values.secret.map((spec) => {
  const i = spec.indexOf('=');
  if (i <= 0) usage(`--secret wants NAME=FILE, got ${JSON.stringify(spec)}`);
  return { name: spec.slice(0, i), file: spec.slice(i + 1) };
});

let world: EmulatedWorld;
try {
  world = await startWorld({ teeserver: !values['no-teeserver'], projectNumbers: EXAMPLE_PROJECT_NUMBERS, port: port('port', values.port) });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  console.error(`serve-world: cannot listen on 127.0.0.1:${values.port ?? 0}: ${e.code === 'EADDRINUSE' ? 'the port is in use: choose another --port' : e.message}`);
  process.exit(69);
}
const { alice, bob } = world.collaborators;
for (const email of EXTRA_ACCOUNTS) world.addServiceAccount(email);

/** Readable by its project's collaborator: alice's service accounts and her pool, or bob's pool. */
function grantees(name: string): string[] | undefined {
  if (name.startsWith(`projects/${alice.projectId}/`) || name.startsWith(`projects/${alice.projectNumber}/`)) return [alice.serviceAccount!, ...EXTRA_ACCOUNTS, poolMembers(alice)];
  if (name.startsWith(`projects/${bob.projectId}/`) || name.startsWith(`projects/${bob.projectNumber}/`)) return [poolMembers(bob)];
  return undefined;
}
const SECRET_NAME = /^projects\/[\w.-]+\/(?:locations\/[\w.-]+\/)?secrets\/[\w.-]+$/;
function addSecret(name: string, data: Buffer | string): void {
  world.addSecret(name, data, { access: grantees(name) ?? [] });
}

for (const { name, file } of secrets) {
  if (!SECRET_NAME.test(name)) usage(`--secret ${name}: a name is projects/PROJECT/secrets/NAME`);
  try {
    addSecret(name, readFileSync(file));
  } catch (err) {
    usage(`--secret ${name}=${file}: ${(err as Error).message}`);
  }
}
if (secrets.length === 0) {
  addSecret('projects/alice-proj/secrets/ca', 'placeholder CA\n');
  addSecret('projects/alice-proj/secrets/alice_psk', 'alice share\n');
  addSecret('projects/bob-proj/secrets/bob_psk', 'bob share\n');
}

// The control endpoint: what a collaborator does in the console, by hand, while tee-init runs.
const control = createServer((req, res) => {
  handle(req, res).catch((err: unknown) => replyJson(res, 500, { error: (err as Error).message }));
});
const say = (line: string) => console.error(`serve-world: ${line}`);

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://control');
  const route = `${req.method} ${url.pathname}`;
  const all = world.gcp.world.secrets!;
  const secret = url.searchParams.get('secret') ?? '';
  if (route === 'GET /secrets') {
    return replyJson(res, 200, Object.fromEntries(Object.entries(all).map(([name, s]) => [name, {
      versions: s.versions.map((v, i) => ({ version: i + 1, state: v.state ?? 'ENABLED', bytes: Buffer.byteLength(v.data) })),
      ...(s.aliases ? { aliases: s.aliases } : {}),
    }])));
  }
  if (route === 'POST /secrets/versions') {
    if (!SECRET_NAME.test(secret)) return replyJson(res, 400, { error: `secret=${JSON.stringify(secret)}: give ?secret=projects/PROJECT/secrets/NAME` });
    const data = await readBody(req);
    let version = 1;
    if (all[secret]) version = world.addVersion(secret, data);
    else addSecret(secret, data);
    say(`${secret}: version ${version} added (${data.length} bytes), now latest`);
    return replyJson(res, 200, { secret, version });
  }
  if (route === 'POST /secrets/state') {
    const version = Number(url.searchParams.get('version'));
    const state = (url.searchParams.get('state') ?? '').toUpperCase() as VersionState;
    if (!STATES.includes(state)) return replyJson(res, 400, { error: `state=${JSON.stringify(state)}: one of ${STATES.join(', ')}` });
    if (!all[secret]?.versions[version - 1]) return replyJson(res, 404, { error: `no version ${JSON.stringify(url.searchParams.get('version'))} of secret ${JSON.stringify(secret)} (GET /secrets lists them)` });
    world.setVersionState(secret, version, state);
    say(`${secret}: version ${version} ${state}`);
    return replyJson(res, 200, { secret, version, state });
  }
  if (route === 'POST /token') {
    await world.writeToken();
    say(`token file re-signed (expires in 1h)`);
    return replyJson(res, 200, { tokenFile: world.tokenFile, exp: world.claims().exp });
  }
  replyJson(res, 404, { error: `${route}: not a control route (GET /secrets, POST /secrets/versions, POST /secrets/state, POST /token)` });
}

let controlPort: number;
try {
  controlPort = await listenLoopback(control, port('control-port', values['control-port']));
} catch (err) {
  await world.close();
  const e = err as NodeJS.ErrnoException;
  console.error(`serve-world: cannot listen on 127.0.0.1:${values['control-port']}: ${e.code === 'EADDRINUSE' ? 'the port is in use: choose another --control-port' : e.message}`);
  process.exit(69);
}
const controlUrl = `http://127.0.0.1:${controlPort}`;
// The launcher refreshes the token file well before its hour is up; so does this.
const resign = setInterval(() => void world.writeToken(), TOKEN_REFRESH_MS);

const config = {
  attestation: { tokenFile: world.tokenFile },
  credentials: {
    alice: { type: 'confidential-space', provider: alice.provider, serviceAccount: alice.serviceAccount },
    bob: { type: 'confidential-space', provider: bob.provider },
  },
  // jwks: the attestation service's keys, for tls listeners that verify a peer (verify.attestation).
  endpoints: { ...world.endpoints, jwks: `${world.gcp.url}${ATTESTATION_JWKS_PATH}` },
};
const base = world.gcp.url;
const urls = {
  sts: `POST ${world.endpoints.sts}`,
  iamcredentials: `POST ${base}/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken (and :generateIdToken)`,
  secretmanager: `GET  ${base}/v1/projects/PROJECT[/locations/LOCATION]/secrets/NAME/versions/VERSION:access`,
  googleJwks: `GET  ${base}${GOOGLE_CERTS_PATH}`,
  attestationJwks: `GET  ${base}${ATTESTATION_JWKS_PATH}`,
  ...(world.endpoints.teeserver ? { teeserver: `POST http://localhost/v1/token on the unix socket ${world.endpoints.teeserver}` } : {}),
  control: `${controlUrl}/secrets, /secrets/versions, /secrets/state, /token`,
};
if (values.json) {
  console.log(JSON.stringify({ ...config, jwks: `${base}${GOOGLE_CERTS_PATH}`, control: controlUrl, secrets: Object.keys(world.gcp.world.secrets!) }));
} else {
  console.log(`# The emulated Confidential Space is up. Paste into your tee-init config (plain http on
# loopback is allowed for the endpoints, there only):
${stringify(config, { lineWidth: 0 }).trimEnd()}

# Serving (until Ctrl-C):
#   STS                  ${urls.sts}
#   IAM credentials      ${urls.iamcredentials}
#   Secret Manager       ${urls.secretmanager}
#   Google's JWKS        ${urls.googleJwks}
#                        (ID tokens: issuer ${GOOGLE_ISSUER}; a tunnel's bearer.jwks)
#   attestation JWKS     ${urls.attestationJwks}
#                        (attestation tokens: endpoints.jwks, tee-init verify --jwks)
${urls.teeserver ? `#   teeserver            ${urls.teeserver}\n` : ''}#   control              ${urls.control}   (serve-world --help)
# Secrets: ${Object.keys(world.gcp.world.secrets!).join(', ')}
# Identities: alice ${alice.serviceAccount} (also ${EXTRA_ACCOUNTS.join(', ')}), bob direct`);
}

const stop = () => {
  clearInterval(resign);
  void Promise.all([world.close(), closeServer(control)]).then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
