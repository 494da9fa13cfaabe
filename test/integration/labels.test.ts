// `tee-init labels --config FILE` (issue 22, part 3): the launch-policy labels a config needs,
// checked against the LABEL instruction of Dockerfile.distroless, whose baked-in config it is.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { root, runInit } from '../helpers/init.ts';
import { policyLabels } from '../helpers/labels.ts';

async function labels(config: string) {
  const { result, code } = await runInit(['labels', '--config', config]);
  return { code, stdout: result.stdout as string, stderr: result.stderr as string };
}

for (const file of ['Dockerfile.distroless', 'Dockerfile.postgres']) {
  test(`${file} carries exactly the labels \`tee-init labels\` prints for its config`, async () => {
    const dockerfile = readFileSync(join(root, file), 'utf8');
    const baked = /^COPY\s+(\S+\.ya?ml)\s+\/etc\/tee-init\/tee-init\.yaml$/m.exec(dockerfile)?.[1];
    assert.ok(baked, 'the Dockerfile bakes a config in at /etc/tee-init/tee-init.yaml');
    const out = await labels(join(root, baked));
    assert.equal(out.code, 0, out.stderr);
    const printed = policyLabels(out.stdout);
    assert.deepEqual(printed, {
      'tee.launch_policy.log_redirect': 'always',
      'tee.launch_policy.allow_env_override': 'TEE_INIT_LOG_LEVEL,TEE_INIT_GRACE_PERIOD',
      'tee.launch_policy.allow_cmd_override': 'false',
    });
    assert.deepEqual(policyLabels(dockerfile), printed);
  });
}

test('an output.dir outside /dev/shm needs a tmpfs mount there: allow_mount_destinations names it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-labels-'));
  try {
    const config = join(dir, 'tee-init.yaml');
    writeFileSync(config, 'output: { dir: /run/tee-secrets }\nrun: { command: [redis-server] }\n');
    const out = await labels(config);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(policyLabels(out.stdout)['tee.launch_policy.allow_mount_destinations'], '/run/tee-secrets');
    assert.match(out.stdout, /tee-mount=type=tmpfs,source=tmpfs,destination=\/run\/tee-secrets/);
    writeFileSync(config, 'output: { dir: /dev/shm/x }\nrun: { command: [redis-server] }\n');
    assert.equal(policyLabels((await labels(config)).stdout)['tee.launch_policy.allow_mount_destinations'], undefined);
    writeFileSync(config, 'run: { comand: [x] }\n');
    const bad = await labels(config);
    assert.equal(bad.code, 78);
    assert.match(bad.stderr, /^tee-init labels: config .*unknown field "comand"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('labels without a config: usage error 64', async () => {
  const { result, code } = await runInit(['labels'], { env: { TEE_INIT_CONFIG: '' } });
  assert.equal(code, 64);
  assert.match(result.stderr as string, /labels needs --config FILE/);
});
