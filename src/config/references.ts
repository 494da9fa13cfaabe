// Cross-field rules the schema cannot express on its own: names that must exist, files that
// must not collide, combinations that go together. Every problem, one line each.
import type { Config } from './schema.ts';
import { checkListenerReferences } from './schema-listeners.ts';

export function checkReferences(config: Config): string[] {
  const problems: string[] = [];
  const fail = (field: string, message: string): void => {
    problems.push(`${field}: ${message}`);
  };
  const files = new Map<string, string>();
  for (const [name, s] of Object.entries(config.secrets)) {
    if (s.source === 'gcp' && !(s.credentials in config.credentials)) {
      const known = Object.keys(config.credentials);
      fail(`secrets.${name}.credentials`, `found ${JSON.stringify(s.credentials)}, but no credentials have that name: write one of ${known.length ? known.join(', ') : '(none are defined: add one under credentials:)'}`);
    }
    if (s.file !== undefined) {
      const other = files.get(s.file);
      if (other) fail(`secrets.${name}.file`, `${JSON.stringify(s.file)} is also the file of ${other}: give each secret its own file name`);
      else files.set(s.file, `secrets.${name}`);
    }
    if (s.mode !== undefined && s.file === undefined) fail(`secrets.${name}.mode`, 'a mode needs a file: (a secret without file: stays in memory): add file: or remove mode:');
  }
  config.run.files.forEach((f, i) => {
    const other = files.get(f.name);
    if (other) fail(`run.files[${i}].name`, `${JSON.stringify(f.name)} is also the file of ${other}: give each file its own name`);
    else files.set(f.name, `run.files[${i}]`);
  });
  // Listeners (and the psk: shorthand): their secrets, credentials and ports.
  checkListenerReferences(config, fail);
  return problems;
}
