// Attested TLS: what `attest:` adds per connection, on the whole init (dist/tee-init.js with a
// config, the fake world: STS, Secret Manager and the launcher's teeserver on loopback). One
// init serves four strict tls listeners in front of the same echo program: plain and attested,
// on the init's thread (workers: 0) and from worker threads (the default). A Node client opens connections one after another and times
//   connect → TLS up → (attested: token read and verified, exporter nonce, claims) → first echo,
// and then N at once, for the rate a listener can attest. Interleaved, same run.
// The fake teeserver signs in-process (RS256, ~1 ms): a real launcher takes a TPM quote and a
// round trip to the attestation service, about 40 ms, serialized (~25 a second per VM). The
// table prints both the measured time and that floor.
// Usage: npm run build && node bench/attest.ts [--connections 200] [--parallel 32]
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { createAttestationVerifier } from '../src/attest/verify-token.ts';
import { ATTEST_ALPN, readAndVerify } from '../src/proxy/types/tls/attest.ts';
import { ATTESTATION_JWKS_PATH } from '../test/fakes/gcp.ts';
import { startWorld } from '../test/fakes/world.ts';
import { startInit } from '../test/helpers/init.ts';
import { freePort } from '../test/helpers/net.ts';
import { createPki } from '../test/helpers/pki.ts';
import { bundlePath, markdownTable, percentile } from './lib.ts';

bundlePath(); // refuses to run without a built bundle

const { values } = parseArgs({ options: { connections: { type: 'string', default: '200' }, parallel: { type: 'string', default: '32' } } });
const N = Number(values.connections);
const P = Number(values.parallel);
const AUDIENCE = 'https://bench.example/attested';
const dir = mkdtempSync('/dev/shm/tee-init-bench-attest-');
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const pki = createPki(join(dir, 'pki'), { serverSans: ['DNS:localhost', 'IP:127.0.0.1'] });
const world = await startWorld();
const [echo, plainPort, attestPort, plainW, attestW] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
const tls = { cert: 'cert', key: 'key', ca: 'ca' };
const config = {
  log: { level: 'info' },
  attestation: { tokenFile: world.tokenFile },
  credentials: {},
  secrets: {
    ca: { source: 'file', path: pki.ca.cert, file: 'ca.pem' },
    cert: { source: 'file', path: pki.server.cert, file: 'server.crt' },
    key: { source: 'file', path: pki.server.key, file: 'server.key' },
  },
  output: { dir: join(dir, 'out') },
  run: { command: [process.execPath, '-e', `require('net').createServer(s=>s.pipe(s)).listen(${echo},'127.0.0.1')`] },
  endpoints: { ...world.endpoints },
  listeners: {
    plain: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${plainPort}`, connect: `127.0.0.1:${echo}`, tls, workers: 0 },
    attested: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${attestPort}`, connect: `127.0.0.1:${echo}`, tls, attest: { audience: AUDIENCE }, workers: 0 },
    // The default: worker threads, which ask the init's thread for each token by message.
    plainWorkers: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${plainW}`, connect: `127.0.0.1:${echo}`, tls },
    attestedWorkers: { type: 'tls', mode: 'strict', listen: `127.0.0.1:${attestW}`, connect: `127.0.0.1:${echo}`, tls, attest: { audience: AUDIENCE } },
  },
};
writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
const { proc: init, log } = startInit(['--config', join(dir, 'config.json')]);
// Listeners that front the program open once it accepts: both have said so.
await log.waitFor((r) => r.message === 'tls proxy listening' && r.listen === `127.0.0.1:${attestPort}`, 60_000);
await log.waitFor((r) => r.message === 'tls proxy listening' && r.listen === `127.0.0.1:${plainPort}`, 60_000);
for (const port of [plainW, attestW]) await log.waitFor((r) => r.message === 'listener serving from worker threads' && r.listen === `127.0.0.1:${port}`, 60_000);

const verify = createAttestationVerifier({ audience: AUDIENCE, require: { 'submods.container.image_digest': world.imageDigest }, jwks: `${world.gcp.url}${ATTESTATION_JWKS_PATH}`, field: 'bench' });
const ca = readFileSync(pki.ca.cert);
const cert = readFileSync(pki.client.cert);
const key = readFileSync(pki.client.key);

/** One connection: ms from connect to the first echoed byte (after verifying, when attested). */
async function once_(port: number, attested: boolean): Promise<number> {
  const t0 = performance.now();
  const s: TLSSocket = connect({ host: '127.0.0.1', port, ca, cert, key, servername: 'localhost', ...(attested ? { ALPNProtocols: [ATTEST_ALPN] } : {}) });
  try {
    await once(s, 'secureConnect');
    if (attested) await readAndVerify(s, verify);
    s.write('x');
    s.resume();
    await once(s, 'data');
    return performance.now() - t0;
  } finally {
    s.destroy();
  }
}

const variants = [
  ['strict, workers: 0', plainPort, false], ['strict + attest, workers: 0', attestPort, true],
  ['strict, worker threads', plainW, false], ['strict + attest, worker threads', attestW, true],
] as const;
const samples = new Map<string, number[]>(variants.map(([name]) => [name, []]));
for (const [, port, attested] of variants) await once_(port, attested); // warm: JWKS fetched, contexts built
for (let i = 0; i < N; i++) for (const [name, port, attested] of variants) samples.get(name)!.push(await once_(port, attested));
async function rate(port: number, attested: boolean): Promise<number> {
  const t0 = performance.now();
  let done = 0;
  await Promise.all(Array.from({ length: P }, async () => {
    while (done < N) {
      done++;
      await once_(port, attested);
    }
  }));
  return (N / (performance.now() - t0)) * 1000;
}
const rates = new Map<string, number>();
for (const [name, port, attested] of variants) rates.set(name, await rate(port, attested));
init.kill('SIGTERM');
await init;
await world.close();

const f = (n: number) => n.toFixed(2);
console.log(`\nAttested TLS on the whole init, ${N} sequential connections per listener (interleaved), then ${N} with ${P} in parallel; Node ${process.version}\n`);
console.log(markdownTable(['listener', 'p50 ms', 'p90 ms', 'p99 ms', `connections/s (${P} parallel)`], variants.map(([name]) => {
  const v = samples.get(name)!;
  return [name, f(percentile(v, 50)), f(percentile(v, 90)), f(percentile(v, 99)), rates.get(name)!.toFixed(0)];
})));
const added = (a: string, b: string) => f(percentile(samples.get(a)!, 50) - percentile(samples.get(b)!, 50));
console.log(`\nadded by attest, p50: ${added('strict + attest, workers: 0', 'strict, workers: 0')} ms (workers: 0), ${added('strict + attest, worker threads', 'strict, worker threads')} ms (worker threads)`);
console.log('\nA real launcher adds a TPM quote and a round trip (~40 ms, serialized, ~25 a second per VM): an attested connection then costs about p50 + 40 ms, and a VM attests at most ~25 connections a second whatever the parallelism (the init lets 4 run and 256 wait, then refuses).');
