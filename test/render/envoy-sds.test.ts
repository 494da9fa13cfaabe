// The Envoy presets' SDS files: the validator that vouches for them is not vacuous (a misspelt
// field, a second secret, a wrong name or kind fail, as Envoy would refuse them), its CLI
// checks SDS files, `check --show` prints them, and the watched directory they name is where
// the output directory's rotation (the ..data swap) raises the IN_MOVED_TO that Envoy's
// WatchedDirectory waits for. No Envoy binary exists here: Envoy's own reaction is not tested.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { execa } from 'execa';
import { render, type Rendered } from '../../src/render/index.ts';
import { boot } from '../helpers/boot.ts';
import { runInit } from '../helpers/init.ts';
import { needsPython } from '../helpers/tools.ts';
import { throwsConfigError } from './assert-config-error.ts';
import { CASES, ENVOY_CASES, OUT, SECRETS } from './cases.ts';
import { checkSds } from './envoy-sds.ts';
import { envoyValidator, repoRoot, validatorPath } from './envoy-validator.ts';

type Obj = Record<string, any>;

const fileOf = (r: Rendered, name: string) => r.files.find((f) => f.name === name)!;
const certFile = () => fileOf(render(CASES['envoy-network']!), 'envoy-sds-cert.yaml').content;
const caFile = () => fileOf(render(CASES['envoy-network']!), 'envoy-sds-ca.yaml').content;

/** One mutation of a rendered SDS file each, and what the validator must say about it. */
const BROKEN_SDS: [string, () => string, (o: Obj) => void, { name?: string; kind?: string }, RegExp][] = [
  ['a misspelt watched_directory', certFile, (o) => { const c = o.resources[0].tls_certificate; c.watched_directroy = c.watched_directory; delete c.watched_directory; }, {}, /watched_directroy/],
  ['a misspelt certificate_chain', certFile, (o) => { const c = o.resources[0].tls_certificate; c.certificate_chian = c.certificate_chain; delete c.certificate_chain; }, {}, /certificate_chian/],
  ['a misspelt trusted_ca', caFile, (o) => { const c = o.resources[0].validation_context; c.trusted_cas = c.trusted_ca; delete c.trusted_ca; }, {}, /trusted_cas/],
  ['a field of the wrong message', certFile, (o) => { o.resources[0].tls_certificate.trusted_ca = { filename: '/x' }; }, {}, /trusted_ca/],
  ['a misspelt Secret type', certFile, (o) => { o.resources[0]['@type'] = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secrets'; }, {}, /unknown type/],
  ['a Secret of the v2 API', certFile, (o) => { o.resources[0]['@type'] = 'type.googleapis.com/envoy.api.v2.auth.Secret'; }, {}, /@type/],
  ['two secrets in one file', certFile, (o) => { o.resources.push(structuredClone(o.resources[0])); }, {}, /exactly one secret/],
  ['no resources', certFile, (o) => { o.resources = []; }, {}, /exactly one resource/],
  ['a top-level typo', certFile, (o) => { o.resource = o.resources; delete o.resources; }, {}, /resource/],
  ['a secret without a name', certFile, (o) => { delete o.resources[0].name; }, {}, /needs a name/],
  ['another name than the bootstrap asks for', certFile, () => {}, { name: 'server_cert' }, /Unexpected SDS secret/],
  ['a CA where a certificate is expected', caFile, () => {}, { kind: 'tls_certificate' }, /expected a tls_certificate secret/],
  ['an empty watched directory', caFile, (o) => { o.resources[0].validation_context.watched_directory.path = ''; }, {}, /watched_directory\.path/],
];

for (const [what, file, mutate, opts, expected] of BROKEN_SDS) {
  test(`envoy sds validator: rejects ${what}`, async (t) => {
    const v = await envoyValidator(t);
    const good = v.parseText(file(), 'sds.yaml') as Obj;
    assert.deepEqual(v.validateSds(good, { canonical: true }).errors, [], 'the rendered file itself is valid');
    mutate(good);
    const { errors } = v.validateSds(good, { canonical: true, ...opts });
    assert.ok(errors.some((e) => expected.test(`${e.path}: ${e.message}`)), `${what}: ${JSON.stringify(errors)}`);
  });
}

/** Mutations of the bootstrap's SDS references: each must fail Envoy's schema. */
const BROKEN_REFS: [string, (common: Obj) => void, RegExp][] = [
  ['a singular tls_certificate_sds_secret_config', (c) => { c.tls_certificate_sds_secret_config = c.tls_certificate_sds_secret_configs; delete c.tls_certificate_sds_secret_configs; }, /tls_certificate_sds_secret_config\b/],
  ['a misspelt path_config_source', (c) => { const s = c.tls_certificate_sds_secret_configs[0].sds_config; s.path_config_sources = s.path_config_source; delete s.path_config_source; }, /path_config_sources/],
  ['a misspelt watched_directory', (c) => { const p = c.validation_context_sds_secret_config.sds_config.path_config_source; p.watch_directory = p.watched_directory; delete p.watched_directory; }, /watch_directory/],
  ['an unknown api version', (c) => { c.validation_context_sds_secret_config.sds_config.resource_api_version = 'V4'; }, /resource_api_version/],
  ['a secret config without a name', (c) => { c.tls_certificate_sds_secret_configs[0].name = ''; }, /name/],
  ['static and SDS trust at once (a oneof)', (c) => { c.validation_context = { trusted_ca: { filename: '/x' } }; }, /oneof|validation_context/],
  ['a combined context without its SDS part', (c) => { c.combined_validation_context = { default_validation_context: {} }; delete c.validation_context_sds_secret_config; }, /validation_context_sds_secret_config/],
];

for (const [what, mutate, expected] of BROKEN_REFS) {
  test(`envoy sds validator: a bootstrap with ${what} is invalid`, async (t) => {
    const v = await envoyValidator(t);
    const b = v.parseText(render(CASES['envoy-network']!).files[0]!.content, 'envoy.yaml') as Obj;
    mutate(b.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.common_tls_context);
    const { errors } = v.validate(b, undefined, { canonical: true });
    assert.ok(errors.some((e) => expected.test(`${e.path}: ${e.message}`)), `${what}: ${JSON.stringify(errors)}`);
  });
}

test('envoy sds validator CLI: --sds accepts every rendered SDS file and rejects a broken one', async (t) => {
  await envoyValidator(t);
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-sds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const files = ENVOY_CASES.flatMap((name) =>
    render(CASES[name]!).files.filter((f) => f.name.startsWith('envoy-sds-')).map((f) => {
      const path = join(dir, `${name}-${f.name}`);
      writeFileSync(path, f.content);
      return path;
    }),
  );
  assert.ok(files.length >= ENVOY_CASES.length * 2);
  const ok = await execa(process.execPath, [validatorPath, '--sds', '--canonical', ...files], { cwd: repoRoot, reject: false });
  assert.equal(ok.exitCode, 0, `${ok.stdout}\n${ok.stderr}`);
  assert.equal(ok.stdout.split('\n').filter((l) => l.endsWith(': valid')).length, files.length);
  assert.equal(ok.stderr, '');

  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, certFile().replace('watched_directory', 'watched_directroy'));
  const bad = await execa(process.execPath, [validatorPath, '--sds', broken], { cwd: repoRoot, reject: false });
  assert.equal(bad.exitCode, 1, bad.stdout);
  assert.match(bad.stdout, /error: \$\.resources\[0\]\.tls_certificate\.watched_directroy: unknown field/);
  // Without --sds the same file is not a bootstrap: the flag is what selects the check.
  const asBootstrap = await execa(process.execPath, [validatorPath, join(dir, files[0]!.split('/').pop()!)], { cwd: repoRoot, reject: false });
  assert.equal(asBootstrap.exitCode, 1);
});

test('tee-init check --show prints the SDS files like any rendered file (paths only, mode 0400)', async (t) => {
  const b = await boot();
  t.after(() => b.close());
  const config = b.config({ run: { preset: 'envoy-http' } });
  const { result, code } = await runInit(['check', '--show', '--config', b.writeConfig(config)]);
  assert.equal(code, 0, result.stderr as string);
  const shown = (result.stdout as string).slice((result.stdout as string).indexOf('# what the program gets (--show)'));
  for (const name of ['envoy.yaml', 'envoy-sds-cert.yaml', 'envoy-sds-ca.yaml']) {
    assert.match(shown, new RegExp(`path: ${b.outDir}/${name.replaceAll('.', '\\.')}\\n {4}mode: "0400"\\n {4}content: \\|`), name);
  }
  assert.match(shown, new RegExp(`filename: "${b.outDir}/server\\.key"`));
  assert.doesNotMatch(shown, /-----BEGIN/, 'paths, never material');
  assert.deepEqual(b.leftovers(), []);
});

// Envoy's WatchedDirectory (source/common/config/watched_directory.cc): an inotify watch on the
// directory, any IN_MOVED_TO in it triggers a re-read of the files the secret names. This
// watcher does the same with the kernel's inotify (via ctypes) on the directory the rendered
// SDS file names, then reads the certificate and key by the names in the file.
const WATCHER = String.raw`
import ctypes, json, os, struct, sys
IN_MOVED_TO = 0x80
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.inotify_init()
if fd < 0 or libc.inotify_add_watch(fd, sys.argv[1].encode(), IN_MOVED_TO) < 0:
    sys.exit('inotify: errno %d' % ctypes.get_errno())
print('ready', flush=True)
buf = os.read(fd, 4096)
wd, mask, cookie, length = struct.unpack_from('iIII', buf)
name = buf[16:16 + length].rstrip(b'\0').decode()
print(json.dumps({'name': name, 'moved_to': bool(mask & IN_MOVED_TO), 'cert': open(sys.argv[2]).read(), 'key': open(sys.argv[3]).read()}), flush=True)
`;

test('envoy sds: the watched directory sees the ..data swap of a rotation; the names in the SDS file then read the new pair', async (t) => {
  if (!needsPython(t, 'ctypes', 'apt-get install python3')) return;
  const v = await envoyValidator(t);
  const out = mkdtempSync(join(tmpdir(), 'tee-init-sds-out-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  // The layout contract (layout.txt): OUT/NAME -> ..data/NAME, ..data -> the generation.
  const generation = (id: string) => {
    mkdirSync(join(out, id));
    for (const [n, body] of [['ca.pem', 'ca'], ['server.crt', 'cert'], ['server.key', 'key']]) writeFileSync(join(out, id, n!), `${body} ${id}\n`);
  };
  generation('..2026_12_01_22_50_01.000000001');
  symlinkSync('..2026_12_01_22_50_01.000000001', join(out, '..data'));
  for (const n of ['ca.pem', 'server.crt', 'server.key']) symlinkSync(join('..data', n), join(out, n));
  const secretsIn = { ca: { path: join(out, 'ca.pem') }, cert: { path: join(out, 'server.crt') }, key: { path: join(out, 'server.key') } };
  const rendered = render({ run: { preset: 'envoy-http' }, secrets: secretsIn, outputDir: out });
  for (const f of rendered.files) writeFileSync(join(out, f.name), f.content, { mode: f.mode });
  const { tls_certificate: tc } = checkSds(v, rendered, out).cert!;

  const watcher = spawn('/usr/bin/python3', ['-c', WATCHER, tc.watched_directory.path, tc.certificate_chain.filename, tc.private_key.filename], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => watcher.kill());
  const lines = createInterface({ input: watcher.stdout! })[Symbol.asyncIterator]();
  assert.equal((await lines.next()).value, 'ready');
  // The rotation: a complete new generation, then ..data_tmp renamed over ..data.
  generation('..2026_12_01_23_50_01.000000002');
  symlinkSync('..2026_12_01_23_50_01.000000002', join(out, '..data_tmp'));
  renameSync(join(out, '..data_tmp'), join(out, '..data'));
  const seen = JSON.parse((await lines.next()).value as string);
  assert.deepEqual(seen, { name: '..data', moved_to: true, cert: 'cert ..2026_12_01_23_50_01.000000002\n', key: 'key ..2026_12_01_23_50_01.000000002\n' });
  await once(watcher, 'exit');
  // The SDS files themselves are plain files in OUT, unchanged by the swap.
  assert.equal(String((await import('node:fs')).readFileSync(join(out, 'envoy-sds-cert.yaml'))), fileOf(rendered, 'envoy-sds-cert.yaml').content);
});

test('envoy sds: the rendered files name only visible paths and OUT, never a generation directory', () => {
  for (const name of ENVOY_CASES) {
    for (const f of render(CASES[name]!).files) {
      assert.doesNotMatch(f.content, /\.\.data|\/\.\.\d/, `${name} ${f.name}`);
      if (f.name.startsWith('envoy-sds-')) assert.ok(f.content.includes(`path: "${OUT}"`) || f.content.includes('path: "/etc/ssl/certs"'), `${name} ${f.name}`);
    }
  }
});

test('envoy sds: a secret whose file: is an SDS file name is one clear config error', () => {
  const secrets = { ...SECRETS, cert: { path: `${OUT}/envoy-sds-cert.yaml` } };
  throwsConfigError(
    () => render({ run: { preset: 'envoy-network', with: { backendPort: 1 } }, secrets, outputDir: OUT }),
    'run.preset: the envoy-network preset writes "envoy-sds-cert.yaml", which is already the file of secrets.cert: give that secret another file: name',
  );
});
