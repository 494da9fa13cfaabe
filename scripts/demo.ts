// `npm run demo`: the whole tee-init flow on a machine with no cloud and no TEE.
// It stands up an emulated Confidential Space world on loopback (a signed attestation token,
// fake STS / IAM credentials / Secret Manager speaking Google's wire formats), makes a
// throwaway PKI, has two collaborators hold the secrets, then boots the real bundle with the
// redis preset — the code path a TEE runs; only the endpoints differ — connects with a real
// mutual-TLS client, stops it with SIGTERM and checks that nothing is left in /dev/shm.
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld } from '../test/fakes/world.ts';
import { createPki } from '../test/helpers/pki.ts';
import { LogTail, bundle, node, root } from '../test/helpers/init.ts';
import { freePort } from '../test/helpers/net.ts';
import { have } from '../test/helpers/tools.ts';
import { createLog } from '../src/lib/log.ts';
import { waitForPort } from '../src/proxy/ready.ts';

const say = (s = '') => console.log(s);
const step = (n: number, s: string) => say(`\n[${n}] ${s}`);

// The throwaway PKI needs the openssl command; a fresh Debian may lack it.
if (!have('openssl')) {
  if (process.getuid?.() !== 0) throw new Error('the demo needs openssl: apt-get install openssl');
  console.log('installing openssl (apt-get) for the throwaway PKI');
  await execa('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl'], { stdio: 'inherit' });
}

const work = mkdtempSync(join(tmpdir(), 'tee-init-demo-'));
const world = await startWorld();
let failed = false;
try {
  say('tee-init demo: an emulated Confidential Space on this machine (no cloud, no TEE)');

  step(1, 'Emulated world: attestation token, loopback STS / IAM credentials / Secret Manager');
  say(`    token file      ${world.tokenFile} (RS256, swname CONFIDENTIAL_SPACE, image ${world.imageDigest.slice(0, 19)}…)`);
  say(`    Google APIs     ${world.endpoints.secretmanager}`);
  say(`    collaborators   alice (${world.providers.alice}, via ${world.collaborators.alice.serviceAccount})`);
  say(`                    bob   (${world.providers.bob}, direct access)`);

  step(2, 'Throwaway PKI (openssl): a CA, a server and a client certificate');
  const pki = createPki(join(work, 'pki'));
  world.addSecret('projects/bob-proj/secrets/redis-client-ca', readFileSync(pki.ca.cert));
  world.addSecret('projects/alice-proj/secrets/redis-server-cert', readFileSync(pki.server.cert));
  world.addSecret('projects/alice-proj/secrets/redis-server-key', readFileSync(pki.server.key));
  say('    bob holds the client CA; alice holds the server certificate and key');

  // DEMO_BACKEND=generic shows the fallback even where redis-server is installed.
  const redis = process.env.DEMO_BACKEND !== 'generic' && have('redis-server');
  const port = await freePort();
  const outDir = join('/dev/shm', `tee-init-demo-${process.pid}`);
  const run = redis
    ? { preset: 'redis', with: { tlsPort: port, bind: '127.0.0.1' } }
    : {
        command: [node, join(root, 'test/fixtures/mtls-greeter.mjs'), '--port', String(port), '--cert', '{{secrets.cert.path}}', '--key', '{{secrets.key.path}}', '--config', '{{output.dir}}/greeter.json'],
        env: { BACKEND_CA: '{{secrets.ca.path}}', BACKEND_NAME: 'tee-init' },
        files: [{ name: 'greeter.json', template: { port: '{{with.port}}', greeting: 'hello' } }],
        with: { port },
      };
  const config = {
    attestation: { tokenFile: world.tokenFile, require: { swname: 'CONFIDENTIAL_SPACE', dbgstat: 'disabled-since-boot' } },
    credentials: {
      alice: { type: 'confidential-space', provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount },
      bob: { type: 'confidential-space', provider: world.providers.bob },
    },
    secrets: {
      ca: { source: 'gcp', ref: 'projects/bob-proj/secrets/redis-client-ca/versions/latest', credentials: 'bob', file: 'ca.pem' },
      cert: { source: 'gcp', ref: 'projects/alice-proj/secrets/redis-server-cert/versions/1', credentials: 'alice', file: 'server.crt' },
      key: { source: 'gcp', ref: 'projects/alice-proj/secrets/redis-server-key/versions/1', credentials: 'alice', file: 'server.key' },
    },
    output: { dir: outDir },
    run,
    endpoints: { sts: world.endpoints.sts, iamcredentials: world.endpoints.iamcredentials, secretmanager: world.endpoints.secretmanager },
  };
  const configPath = join(work, 'tee-init.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  step(3, `tee-init boots ${redis ? 'redis-server (redis preset)' : 'a Node mTLS server (redis-server is not installed: generic backend)'}`);
  const init = execa(node, ['--disable-sigusr1', bundle, '--config', configPath], {
    reject: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    env: { NO_PROXY: '127.0.0.1,localhost' },
  });
  const log = new LogTail();
  init.stderr.setEncoding('utf8');
  init.stderr.on('data', (c: string) => log.push(c));
  const attested = await log.waitFor('attestation token read', 30_000);
  say(`    attestation     ${attested.swname}, ${attested.hwmodel}, dbgstat ${attested.dbgstat}`);
  const fetched = await log.waitFor('secrets fetched', 30_000);
  say(`    secrets         ${fetched.secrets} fetched with ${fetched.identities} identities in ${fetched.ms} ms (STS audiences: ${world.gcp.requestsOf('sts').length}, impersonations: ${world.gcp.requestsOf('iam').length})`);
  const started = await log.waitFor('child started', 30_000);
  say(`    child           pid ${started.pid}: ${(started.command as string[]).slice(0, 4).join(' ')} …`);
  say(`    files           ${readdirSync(outDir).map((f) => f).join(', ')} in ${outDir} (tmpfs, 0700)`);
  await waitForPort({ host: '127.0.0.1', port }, createLog({ level: 'error' }), { timeoutMs: 15_000 });

  step(4, 'A real mutual-TLS client connects');
  if (redis) {
    const cli = ['--tls', '--cacert', pki.ca.cert, '--cert', pki.client.cert, '--key', pki.client.key, '-h', '127.0.0.1', '-p', String(port)];
    const ping = await execa('redis-cli', [...cli, 'ping'], { reject: false });
    say(`    redis-cli --tls … ping                 -> ${ping.stdout.trim() || ping.stderr.trim()}`);
    if (ping.stdout.trim() !== 'PONG') throw new Error('no PONG over mutual TLS');
    const anon = await execa('redis-cli', ['--tls', '--cacert', pki.ca.cert, '-h', '127.0.0.1', '-p', String(port), 'ping'], { reject: false, timeout: 5000 });
    say(`    without a client certificate          -> ${anon.stdout.trim() === 'PONG' ? 'PONG (!)' : 'refused'}`);
    if (anon.stdout.trim() === 'PONG') throw new Error('a client without a certificate was served');
  } else {
    const greeting = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key), servername: 'localhost' });
      let text = '';
      s.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve(text.trim())).on('error', reject);
    });
    say(`    mTLS client                            -> ${greeting}`);
  }

  step(5, 'SIGTERM to tee-init (as the launcher does at VM shutdown)');
  init.kill('SIGTERM');
  const result = await init;
  const exited = log.find('child exited');
  say(`    child exited with ${exited?.status}; tee-init exited with ${result.exitCode}`);
  // Only the init's own directory: other programs on this machine may use /dev/shm meanwhile.
  const left = existsSync(outDir);
  say(`    /dev/shm        ${left ? `LEFT BEHIND: ${outDir}` : `nothing left behind (${outDir} is gone)`}`);
  if (result.exitCode !== 0 || left) throw new Error('unclean shutdown');

  say('\nOK: attested, fetched from two collaborators, served mutual TLS from tmpfs, stopped cleanly.');
} catch (err) {
  failed = true;
  console.error(`\nDEMO FAILED: ${(err as Error).message}`);
} finally {
  await world.close();
  rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
