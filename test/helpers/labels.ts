// Launch-policy labels (tee.launch_policy.*) in Dockerfile LABEL syntax: what `tee-init labels`
// prints and what Dockerfile.distroless carries.

/** The tee.launch_policy.* labels of every LABEL instruction in a Dockerfile's text. */
export function policyLabels(dockerfile: string): Record<string, string> {
  const out: Record<string, string> = {};
  const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').filter((l) => /^\s*LABEL\s/i.test(l));
  for (const l of instructions) {
    for (const m of l.matchAll(/(tee\.launch_policy\.[a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) out[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
  }
  return out;
}
