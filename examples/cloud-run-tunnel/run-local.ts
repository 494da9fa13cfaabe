// The reference demo's flow on this machine, with tee-init at both ends and no Envoy:
//   node examples/cloud-run-tunnel/run-local.ts        (or run-local.sh; after `npm run build`)
// The server side (local/server.yaml: tunnel listener + Congrats server) boots first; the
// client side (local/client.yaml) boots only once the server side listens AND its Congrats
// server accepts, so the client's first tunnel never meets a closed port. The client's program
// prints the server's greeting; its exit status is the demo's result. Secrets come from the
// files examples/local/make-dev-secrets.sh writes (made here if missing; needs openssl).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../../test/helpers/init.ts';
import { runLocal } from '../run-local-lib.ts';

const here = join(root, 'examples', 'cloud-run-tunnel');

await runLocal('TCP through an HTTP/2 tunnel, mutual TLS inside (examples/cloud-run-tunnel), both sides on this machine', async (l) => {
  if (!existsSync(join(root, 'examples/local/dev-secrets/ca.crt'))) execFileSync('sh', [join(root, 'examples/local/make-dev-secrets.sh')], { stdio: 'ignore' });
  const server = l.boot('server', join(here, 'local/server.yaml'), { cwd: here });
  const listening = await server.waitFor('tunnel listening');
  await server.printed('congrats server listening');
  l.say(`server side: tunnel-in listening on ${listening.listen} (h2c), and the Congrats server is listening`);
  const client = l.boot('client', join(here, 'local/client.yaml'), { cwd: here });
  const result = await client.proc;
  const printed = String(result.stdout).trim();
  l.say(`client side: congrats-client through tunnel-out -> ${printed.split('\n').join(' / ')}`);
  if (result.exitCode !== 0 || !printed.startsWith('Congrats!')) throw new Error(`the client side exited with ${result.exitCode}:\n${client.log.text}`);
  return 'one TCP connection crossed the HTTP/2 tunnel with mutual TLS inside, end to end between two tee-inits.';
});
