// What the Envoy examples' run-locals prove without Envoy: `tee-init check --show` on the
// example's own config (users from the example's etc/, as an image's /etc would have them),
// and the rendered bootstrap and SDS files through the Envoy schema validator
// (test/render/envoy-validate.mjs: Envoy's API protos, and Envoy's own SDS-from-files rules).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'yaml';
import type { Rendered } from '../src/render/index.ts';
import { checkSds } from '../test/render/envoy-sds.ts';
import { createValidator } from '../test/render/envoy-validate.mjs';
import type { Config, Local } from './run-local-lib.ts';

// run: prints "the program", processes: "the programs"; the files are listed alike.
const SHOW = /^# what the programs? gets? \(--show\)$/m;

/** Runs check --show on the example's own config and validates the Envoy files it shows. */
export async function checkEnvoyExample(l: Local, example: string, outputDir: string): Promise<void> {
  const text = await l.check(example, ['--etc', `examples/${example}/etc`, '--show']);
  l.say(`tee-init check --config examples/${example}/tee-init.yaml --etc examples/${example}/etc --show:`);
  // The plan from the output dir down to the files: what runs, as whom, reading what.
  const lines = text.split('\n');
  const from = lines.findIndex((x) => x.startsWith('output '));
  const to = lines.findIndex((x, i) => i > from && /^(health|listeners|refresh|fetch|endpoints) /.test(x));
  for (const line of [lines[0]!, ...lines.slice(from, to)]) l.say(`  ${line}`);
  const at = SHOW.exec(text);
  if (!at) throw new Error('check --show printed no rendered files');
  const shown = parse(text.slice(at.index + at[0].length)) as { files: { path: string; mode: string; content: string }[] };
  const rendered = { argv: [], env: {}, files: shown.files.map((f) => ({ name: basename(f.path), mode: Number.parseInt(f.mode, 8), content: f.content })) } as Rendered;
  const v = createValidator();
  const bootstrap = v.validate(v.parseText(rendered.files[0]!.content, 'envoy.yaml'), undefined, { canonical: true });
  if (bootstrap.errors.length > 0) throw new Error(`envoy.yaml is not a valid Envoy bootstrap:\n${bootstrap.errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')}`);
  const secrets = checkSds(v, rendered, outputDir);
  l.say(`envoy-validate: ${rendered.files[0]!.name} is a valid v3 bootstrap; ${Object.values(secrets).map((s) => `${basename(s.path as string)} (${s.name})`).join(', ')} are valid SDS files it watches`);
}

/**
 * A local difference for the real run: the user `envoy` exists in the image (etc/ here), maybe
 * not on this machine; without it, Envoy and the output dir stay root's.
 */
export function withoutMissingUsers(c: Config): string[] {
  const passwd = readFileSync('/etc/passwd', 'utf8');
  const notes: string[] = [];
  const holders: [string, Config | undefined, string][] = [['output.owner', c.output, 'owner'], ['run.user', c.run, 'user'],
    ...Object.entries<Config>(c.processes ?? {}).map(([n, p]): [string, Config, string] => [`processes.${n}.user`, p, 'user'])];
  for (const [field, holder, key] of holders) {
    const name = holder?.[key] as string | undefined;
    if (name === undefined || /^\d+$/.test(name) || passwd.split('\n').some((line) => line.startsWith(`${name}:`))) continue;
    delete holder![key];
    notes.push(`${field.padEnd(21)} left out (no user ${name} in this machine's /etc/passwd)`);
  }
  return notes;
}
