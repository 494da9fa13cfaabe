// The program's environment is the init's, minus the init's own settings (TEE_INIT_*): used by the
// boot and by a run without a config alike.

/** The environment minus tee-init's own settings: they are for the init, not the child. */
export function withoutInitSettings(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (!k.startsWith('TEE_INIT_')) out[k] = v;
  return out;
}
