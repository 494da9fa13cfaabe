// Runs an emulated Confidential Space world until interrupted, for trying tee-init locally:
//   node test/fakes/serve-world.ts [--secret projects/alice-proj/secrets/ca=./ca.pem ...] [--no-teeserver]
// Prints, as one JSON line on stdout, what a config needs: the token file, the endpoints and the
// credentials. Without --secret it serves a few placeholder secrets.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startWorld } from './world.ts';

const { values } = parseArgs({
  options: { secret: { type: 'string', multiple: true, default: [] }, 'no-teeserver': { type: 'boolean', default: false } },
});
const world = await startWorld({ teeserver: !values['no-teeserver'] });
const secrets = values.secret.length > 0 ? values.secret : [];
for (const spec of secrets) {
  const i = spec.indexOf('=');
  if (i < 0) throw new Error(`--secret wants NAME=FILE, got ${spec}`);
  world.addSecret(spec.slice(0, i), readFileSync(spec.slice(i + 1)));
}
if (secrets.length === 0) {
  world.addSecret('projects/alice-proj/secrets/ca', 'placeholder CA\n');
  world.addSecret('projects/alice-proj/secrets/alice_psk', 'alice share\n');
  world.addSecret('projects/bob-proj/secrets/bob_psk', 'bob share\n');
}
const { alice, bob } = world.collaborators;
console.log(
  JSON.stringify({
    attestation: { tokenFile: world.tokenFile },
    credentials: {
      alice: { type: 'confidential-space', provider: alice.provider, serviceAccount: alice.serviceAccount },
      bob: { type: 'confidential-space', provider: bob.provider },
    },
    endpoints: world.endpoints,
    secrets: Object.keys(world.gcp.world.secrets ?? {}),
  }),
);
const stop = () => void world.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
