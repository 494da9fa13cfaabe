// `tee-init labels --config FILE`: the image labels (tee.launch_policy.*) a Confidential Space
// image with this config needs. The launcher lets an operator change at launch only what these
// labels allow; everything else is part of the measured image. Printed as a Dockerfile LABEL
// instruction, to paste (Dockerfile.distroless carries the one for examples/redis; a test
// compares the two).
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';

export const LABEL_PREFIX = 'tee.launch_policy.';

/**
 * The TEE_INIT_* variables an operator may set at launch: benign knobs only. Not
 * TEE_INIT_CONFIG (another config is other secrets, other endpoints, another program), nor
 * the signal settings, which decide how the program is stopped and reaped.
 */
export const ENV_OVERRIDES = ['TEE_INIT_LOG_LEVEL', 'TEE_INIT_GRACE_PERIOD'] as const;

/** /dev/shm is a tmpfs in every Confidential Space VM; anywhere else needs a `tee-mount` tmpfs. */
const SHM = /^\/dev\/shm(\/|$)/;

/** label name (without the prefix) → value, in the order printed. */
export function launchPolicy(config: Config): [string, string][] {
  const labels: [string, string][] = [
    // tee-init never logs a secret: its logs may go to Cloud Logging and the serial console.
    ['log_redirect', 'always'],
    ['allow_env_override', ENV_OVERRIDES.join(',')],
    // Another command would run under tee-init with the collaborators' secrets.
    ['allow_cmd_override', 'false'],
  ];
  const mounts = config.output.dir !== undefined && !SHM.test(config.output.dir) ? [config.output.dir] : [];
  if (mounts.length > 0) labels.push(['allow_mount_destinations', mounts.join(':')]);
  return labels;
}

/** The LABEL instruction, one label a line. */
export function labelsFor(configPath: string): string[] {
  const { config, path } = loadConfig(configPath);
  const labels = launchPolicy(config);
  const lines = [`# tee-init labels --config ${path}`];
  labels.forEach(([k, v], i) => {
    const text = `${LABEL_PREFIX}${k}=${JSON.stringify(v)}`;
    lines.push(`${i === 0 ? 'LABEL ' : '      '}${text}${i < labels.length - 1 ? ' \\' : ''}`);
  });
  if (config.output.dir !== undefined && !SHM.test(config.output.dir)) {
    lines.push(`# output.dir ${config.output.dir} is not under /dev/shm: launch with tee-mount=type=tmpfs,source=tmpfs,destination=${config.output.dir}`);
  }
  return lines;
}
