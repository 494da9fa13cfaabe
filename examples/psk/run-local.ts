// Runs this example's two-collaborator TLS-PSK setup on one machine, with no cloud:
//   node examples/psk/run-local.ts        (after `npm ci && npm run build`; needs redis-server)
// An emulated Confidential Space (test/fakes) holds alice's and bob's shares. Two inits boot
// from configs like tee-init.yaml, only the endpoints differ:
//   "server" TEE: redis-server on 127.0.0.1, TLS-PSK listener in front of it (server mode);
//   "client" TEE: a plaintext listener whose connections leave as TLS-PSK (client mode).
// Each fetches both shares with the collaborators' own identities and derives the same key;
// redis-cli then talks to redis through both inits. Nothing is printed that is secret.
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWorld } from '../../test/fakes/world.ts';
import { LogTail, bundle, node } from '../../test/helpers/init.ts';
import { freePort } from '../../test/helpers/net.ts';

const ALICE = '2c6f63f8c0f53a565db041b91c0a95add8913fc102670589db3982228dbfed90';
const BOB = 'b15244faf36e5e4b178d3891701d245f2e45e881d913b6c35c0ea0ac14224cc2';

const world = await startWorld({ teeserver: false });
const dir = mkdtempSync('/dev/shm/tee-init-psk-example-');
const inits: ReturnType<typeof execa>[] = [];
let status = 0;
try {
  world.addSecret('projects/alice-proj/secrets/alice_psk', `${ALICE}\n`);
  world.addSecret('projects/bob-proj/secrets/bob_psk', `${BOB}\n`);
  const [pskPort, redisPort, localPort] = [await freePort(), await freePort(), await freePort()];

  const config = (name: string, run: object, psk: object) => {
    const path = join(dir, `${name}.json`);
    writeFileSync(path, JSON.stringify({
      attestation: { tokenFile: world.tokenFile, require: { swname: 'CONFIDENTIAL_SPACE' } },
      credentials: {
        alice: { type: 'confidential-space', provider: world.providers.alice, serviceAccount: world.collaborators.alice.serviceAccount },
        bob: { type: 'confidential-space', provider: world.providers.bob },
      },
      secrets: {
        share_a: { source: 'gcp', ref: 'projects/alice-proj/secrets/alice_psk/versions/latest', credentials: 'alice' },
        share_b: { source: 'gcp', ref: 'projects/bob-proj/secrets/bob_psk/versions/latest', credentials: 'bob' },
      },
      run,
      psk: { ...psk, identities: { Client1: { shares: ['share_a', 'share_b'], combine: 'sha256-concat' } } },
      endpoints: { sts: world.endpoints.sts, iamcredentials: world.endpoints.iamcredentials, secretmanager: world.endpoints.secretmanager },
    }));
    return path;
  };
  const boot = async (name: string, path: string) => {
    const p = execa(node, ['--disable-sigusr1', bundle, '--config', path], { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', env: { NO_PROXY: '127.0.0.1,localhost' } });
    inits.push(p);
    const log = new LogTail();
    p.stderr!.setEncoding('utf8').on('data', (c: string) => log.push(c));
    const listening = await log.waitFor('psk proxy listening', 30_000);
    console.log(`${name.padEnd(6)} init: ${listening.mode} mode, listening on ${listening.listen} -> ${listening.connect}`);
  };

  await boot('server', config('server', { command: ['redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] },
    { mode: 'server', listen: `127.0.0.1:${pskPort}`, connect: `127.0.0.1:${redisPort}` }));
  await boot('client', config('client', { command: ['sleep', 'infinity'] },
    { mode: 'client', listen: `127.0.0.1:${localPort}`, connect: `127.0.0.1:${pskPort}` }));

  const cli = (...args: string[]) => execa('redis-cli', ['-p', String(localPort), ...args], { reject: false });
  const set = await cli('SET', 'greeting', 'hello through two TEEs');
  const get = await cli('GET', 'greeting');
  console.log(`redis-cli -p ${localPort} SET/GET -> ${set.stdout.trim()} / ${get.stdout.trim()}`);
  if (get.stdout.trim() !== 'hello through two TEEs') throw new Error(`unexpected answer: ${get.stdout} ${get.stderr}`);
  console.log('OK: both inits derived the same key from alice\'s and bob\'s shares; redis answered through TLS-PSK.');
} catch (err) {
  console.error(`FAILED: ${(err as Error).message}`);
  status = 1;
} finally {
  for (const p of inits) p.kill('SIGTERM');
  await Promise.all(inits);
  await world.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(status);
