// The placeholder rules: one pass, typed whole values in data, text elsewhere.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { render, type RunSpec } from '../../src/render/index.ts';
import { OUT, SECRETS } from './cases.ts';

const r = (run: RunSpec) => render({ run, secrets: SECRETS, outputDir: OUT });

test('the three kinds of placeholder, with optional spaces inside the braces', () => {
  const out = r({ command: ['p', '{{secrets.cert.path}}', '{{ output.dir }}', '{{  with.n  }}'], with: { n: 'x' } });
  assert.deepEqual(out.argv, ['p', '/run/tee-init/server.crt', '/run/tee-init', 'x']);
});

test('a substituted value is never expanded again', () => {
  const out = r({
    command: ['p', '{{with.a}}', '{{with.b}}{{with.a}}'],
    env: { A: '{{with.a}}' },
    files: [{ name: 'a.json', template: { a: '{{with.a}}', b: 'x{{with.a}}' } }, { name: 'a.txt', template: '{{with.a}}' }],
    with: { a: '{{secrets.key.path}}', b: '{{' },
  });
  assert.deepEqual(out.argv, ['p', '{{secrets.key.path}}', '{{{{secrets.key.path}}']);
  assert.equal(out.env.A, '{{secrets.key.path}}');
  assert.deepEqual(JSON.parse(out.files[0]!.content), { a: '{{secrets.key.path}}', b: 'x{{secrets.key.path}}' });
  assert.equal(out.files[1]!.content, '{{secrets.key.path}}');
});

test('text that only looks like a placeholder stays as it is', () => {
  const out = r({ command: ['p', '{{', '}}', '{{ unclosed', 'a {b} c', '{{{with.v}}}', '{{\nwith.v}}'], with: { v: 1 } });
  assert.deepEqual(out.argv, ['p', '{{', '}}', '{{ unclosed', 'a {b} c', '{1}', '{{\nwith.v}}']);
});

test('a whole-value placeholder keeps the value\'s type in data; inside text it is text', () => {
  const w = { port: 8443, on: true, ratio: 0.5, list: ['a', { b: 1 }], map: { k: 'v' }, s: '8443' };
  const out = r({
    command: ['p', '{{with.port}}', '--on={{with.on}}'],
    env: { PORT: '{{with.port}}' },
    files: [{ name: 'a.yaml', template: { port: '{{with.port}}', on: '{{with.on}}', ratio: '{{with.ratio}}', list: '{{with.list}}', map: '{{with.map}}', s: '{{with.s}}', text: ':{{with.port}}' } }],
    with: w,
  });
  assert.deepEqual(out.argv, ['p', '8443', '--on=true']);
  assert.equal(out.env.PORT, '8443');
  assert.deepEqual(parse(out.files[0]!.content), { port: 8443, on: true, ratio: 0.5, list: ['a', { b: 1 }], map: { k: 'v' }, s: '8443', text: ':8443' });
});

test('filled data is a copy: the output shares nothing with run.with or the templates', () => {
  const list = ['a'];
  const template = { l: '{{with.list}}', fixed: { x: 1 } };
  const out = r({ command: ['p'], files: [{ name: 'a.json', template }], with: { list } });
  list.push('b');
  template.fixed.x = 2;
  assert.deepEqual(JSON.parse(out.files[0]!.content), { l: ['a'], fixed: { x: 1 } });
});

test('a "__proto__" key in a data template is an ordinary key', () => {
  const template = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
  const out = r({ command: ['p'], files: [{ name: 'a.json', template }] });
  assert.deepEqual(JSON.parse(out.files[0]!.content), template);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('with values of a preset include its defaults', () => {
  const out = r({ preset: 'redis', env: { REDIS_PORT: '{{with.tlsPort}}', CERT: '{{with.cert}}' } });
  assert.deepEqual(out.env, { REDIS_PORT: '6379', CERT: 'cert' });
});

test('env and files are rendered for presets too; the preset adds no env of its own', () => {
  const out = r({ preset: 'envoy-http', env: { X: '{{output.dir}}' }, files: [{ name: 'extra.yaml', template: { a: '{{with.listenPort}}' } }] });
  assert.deepEqual(out.env, { X: OUT });
  assert.deepEqual(out.files.map((f) => f.name), ['envoy.yaml', 'envoy-sds-cert.yaml', 'envoy-sds-ca.yaml', 'extra.yaml']);
  assert.equal(out.files[3]!.content, 'a: 8443\n');
});

test('output.dir is normalized (a trailing slash does not double up)', () => {
  const out = render({ run: { preset: 'envoy-http' }, secrets: SECRETS, outputDir: '/run/tee-init/' });
  assert.equal(out.argv[2], '/run/tee-init/envoy.yaml');
});
