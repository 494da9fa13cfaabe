// Attested TLS: what `attest:` adds per connection, on the whole init (dist/tee-init.js with a
// config, the fake world: STS, Secret Manager and the launcher's teeserver on loopback). One
// init serves two strict tls listeners in front of the same echo program: `plain` and
// `attested`. A Node client opens connections one after another and times
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
const [echo, plainPort, attestPort] = [await freePort(), await freePort(), await freePort()];
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
  },
};
writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
const { proc: init, log } = startInit(['--config', join(dir, 'config.json')]);
// Listeners that front the program open once it accepts: both have said so.
await log.waitFor((r) => r.message === 'tls proxy listening' && r.listen === `127.0.0.1:${attestPort}`, 60_000);
await log.waitFor((r) => r.message === 'tls proxy listening' && r.listen === `127.0.0.1:${plainPort}`, 60_000);

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

const samples = { plain: [] as number[], attested: [] as number[] };
await once_(plainPort, false);
await once_(attestPort, true); // warm: JWKS fetched, contexts built
for (let i = 0; i < N; i++) {
  samples.plain.push(await once_(plainPort, false));
  samples.attested.push(await once_(attestPort, true));
}
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
const rates = { plain: await rate(plainPort, false), attested: await rate(attestPort, true) };
init.kill('SIGTERM');
await init;
await world.close();

const f = (n: number) => n.toFixed(2);
console.log(`\nAttested TLS on the whole init (workers: 0), ${N} sequential connections each, then ${N} with ${P} in parallel; Node ${process.version}\n`);
console.log(markdownTable(['listener', 'p50 ms', 'p90 ms', 'p99 ms', `connections/s (${P} parallel)`], [
  ['strict (no attest)', f(percentile(samples.plain, 50)), f(percentile(samples.plain, 90)), f(percentile(samples.plain, 99)), rates.plain.toFixed(0)],
  ['strict + attest (fake launcher)', f(percentile(samples.attested, 50)), f(percentile(samples.attested, 90)), f(percentile(samples.attested, 99)), rates.attested.toFixed(0)],
  ['added by attest, p50', f(percentile(samples.attested, 50) - percentile(samples.plain, 50)), '', '', ''],
]));
console.log('\nA real launcher adds a TPM quote and a round trip (~40 ms, serialized, ~25 a second per VM): an attested connection then costs about p50 + 40 ms, and a VM attests at most ~25 connections a second whatever the parallelism (the init lets 4 run and 256 wait, then refuses).');
