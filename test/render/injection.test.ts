// No value can change the structure of what it is rendered into: hostile strings in with, env,
// secret paths and the output directory come back, parsed, exactly where their placeholder stood.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { render, type RenderInput } from '../../src/render/index.ts';
import { throwsConfigError } from './assert-config-error.ts';
import { envoyValidator } from './envoy-validator.ts';

const HOSTILE = [
  `"double" and 'single' quotes`,
  'line1\nline2\r\n  indented: true\n- item',
  '{{secrets.key.path}}',
  '{{ output.dir }}{{with.v0}}',
  'key: value',
  '# not a comment',
  'a #comment',
  '&anchor',
  '*alias',
  '<<: *x',
  '- item',
  '[1, 2]',
  '{a: b}',
  'yes', 'No', 'on', 'y', '~', 'null', 'true', '0x1F', '010', '0o17', '1e3', '.inf', '.NaN', '12:30:00', '2001-12-14', '1_000',
  ' leading and trailing ',
  '\ttab',
  '---', '...', '|', '>-', '!!binary AAAA', '!tag x', '%YAML 1.1', '@type', '"', "'", '\\', '\\n', '}}', '{{', '{', '}',
  '${HOME} $(id) `id`; rm -rf / && echo x > y | z',
  'ünïcödé ✓ \u2028\u2029',
  ' ',
  '',
];
const NONEMPTY = HOSTILE.filter((h) => h !== '');

/** Hostile text usable inside a path (no NUL; a "/" would only add a directory level). */
const pathPart = (h: string, i: number) => `${i}-${h.replaceAll('/', '_')}`;

describe('the none preset: argv, env and data files', () => {
  const w = Object.fromEntries(HOSTILE.map((h, i) => [`v${i}`, h]));
  const keys = HOSTILE.map((_, i) => `v${i}`);
  const out = render({
    run: {
      command: ['prog', ...keys.flatMap((k) => [`{{with.${k}}}`, `--opt={{with.${k}}}!`])],
      env: Object.fromEntries(keys.map((k) => [k.toUpperCase(), `<{{with.${k}}}>`])),
      files: ['a.yaml', 'a.json'].map((name) => ({
        name,
        template: { whole: keys.map((k) => `{{with.${k}}}`), embedded: Object.fromEntries(keys.map((k) => [k, `<{{with.${k}}}>`])) },
      })),
      with: w,
    },
    secrets: {},
    outputDir: '/run/tee-init',
  });

  test('argv: one element per argument, each exactly the value', () => {
    assert.deepEqual(out.argv, ['prog', ...HOSTILE.flatMap((h) => [h, `--opt=${h}!`])]);
  });
  test('env: each value exactly', () => {
    assert.deepEqual(out.env, Object.fromEntries(HOSTILE.map((h, i) => [`V${i}`, `<${h}>`])));
  });
  const expected = { whole: HOSTILE, embedded: Object.fromEntries(HOSTILE.map((h, i) => [`v${i}`, `<${h}>`])) };
  test('YAML: parsed back (YAML 1.2 and YAML 1.1 typing) it is the intended data', () => {
    const text = out.files[0]!.content;
    assert.deepEqual(parse(text), expected);
    assert.deepEqual(parse(text, { version: '1.1' }), expected);
  });
  test("YAML: parsed back the way Envoy's yaml-cpp types scalars, it is the intended data", async (t) => {
    const v = await envoyValidator(t);
    if (v) assert.deepEqual(v.parseText(out.files[0]!.content, 'a.yaml'), expected);
  });
  test('JSON: parsed back it is the intended data', () => {
    assert.deepEqual(JSON.parse(out.files[1]!.content), expected);
  });
});

describe('text file templates', () => {
  test('refuse a value with a newline or control character (it could add a directive)', () => {
    for (const bad of ['a\nb', 'a\rb', 'a\x1bb', 'a\x7fb']) {
      throwsConfigError(
        () => render({ run: { command: ['p'], files: [{ name: 'a.conf', template: 'key {{with.v}}\n' }], with: { v: bad } }, secrets: {}, outputDir: '/o' }),
        'run.files[0].template: {{with.v}}: the value contains a newline or control character',
      );
    }
  });
  test('take any other value as is (tabs, quotes, braces)', () => {
    const v = `\t"q" 'q' {{secrets.x.path}} # ;`;
    const out = render({ run: { command: ['p'], files: [{ name: 'a.conf', template: 'key {{with.v}}\n' }], with: { v } }, secrets: {}, outputDir: '/o' });
    assert.equal(out.files[0]!.content, `key ${v}\n`);
  });
});

describe('redis: hostile paths stay single arguments, in the preset\'s and the extra arguments', () => {
  for (const [i, h] of NONEMPTY.entries()) {
    test(`value ${JSON.stringify(h)}`, () => {
      const dir = `/run/${pathPart(h, i)}`;
      const secrets = { ca: { path: `${dir}/ca ${pathPart(h, i)}` }, cert: { path: `${dir}/c` }, key: { path: `${dir}/k` } };
      const out = render({ run: { preset: 'redis', with: { args: ['--x', '{{output.dir}}', '{{with.tlsPort}}{{secrets.ca.path}}'] } }, secrets, outputDir: dir });
      const at = (flag: string) => out.argv[out.argv.indexOf(flag) + 1];
      assert.equal(at('--tls-ca-cert-file'), secrets.ca.path);
      assert.equal(at('--dir'), dir);
      assert.deepEqual(out.argv.slice(-3), ['--x', dir, `6379${secrets.ca.path}`]);
      assert.equal(at('--unixsocket'), `${dir}/redis.sock`);
      assert.equal(out.argv.length, 27 + 3);
      // The reload command too: one argument per path, no shell.
      assert.ok(typeof out.reload === 'object' && 'exec' in out.reload);
      assert.deepEqual(out.reload.exec.slice(2), ['-s', `${dir}/redis.sock`, 'CONFIG', 'SET', 'tls-cert-file', secrets.cert.path, 'tls-key-file', secrets.key.path, 'tls-ca-cert-file', secrets.ca.path]);
    });
  }
});

describe('envoy: hostile paths, output directory and SAN values', () => {
  // Render once with plain markers and once with hostile values in the same places: parsed
  // back, the two documents differ only by the markers being replaced with the hostile values.
  const input = (values: readonly string[]): RenderInput => {
    const dir = `/run/${values[0]}`;
    return {
      run: { preset: 'envoy-http', with: { backendPort: 8080, adminPort: 9901, sanMatch: values.map((v) => ({ type: 'URI', exact: v })) } },
      secrets: { ca: { path: `${dir}/${values[1]}` }, cert: { path: `${dir}/${values[2]}` }, key: { path: `${dir}/${values[3]}` } },
      outputDir: dir,
    };
  };
  const hostile = NONEMPTY.map(pathPart);
  const markers = hostile.map((_, i) => `MARKER${String(i).padStart(3, '0')}`);
  const unmark = (value: unknown): unknown => {
    if (typeof value === 'string') return value.replace(/MARKER(\d{3})/g, (_, n: string) => hostile[Number(n)]!);
    if (Array.isArray(value)) return value.map(unmark);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unmark(v)]));
    return value;
  };
  const safe = render(input(markers));
  const bad = render(input(hostile));

  test('argv', () => {
    assert.deepEqual(bad.argv, unmark(safe.argv));
  });
  test('the bootstrap, parsed as YAML 1.2 and 1.1', () => {
    for (const version of ['1.2', '1.1'] as const) {
      assert.deepEqual(parse(bad.files[0]!.content, { version }), unmark(parse(safe.files[0]!.content, { version })));
    }
  });
  test('the bootstrap, parsed like Envoy, is still valid', async (t) => {
    const v = await envoyValidator(t);
    if (!v) return;
    const data = v.parseText(bad.files[0]!.content, 'envoy.yaml');
    assert.deepEqual(data, unmark(v.parseText(safe.files[0]!.content, 'envoy.yaml')));
    assert.deepEqual(v.validate(data, undefined, { canonical: true }).errors, []);
  });
});
