// Every rendered Envoy bootstrap and SDS file passes Envoy's own API schema (the shared
// validator, in its stricter --canonical mode), and has the security properties the presets
// promise.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { render } from '../../src/render/index.ts';
import { CASES, ENVOY_CASES, ENVOY_TUNNEL_CASES } from './cases.ts';
import { checkSds } from './envoy-sds.ts';
import { envoyValidator, repoRoot, validatorPath } from './envoy-validator.ts';

type Obj = Record<string, any>;

function bootstrapOf(name: string): { text: string; argv: string[] } {
  const r = render(CASES[name]!);
  const file = r.files.find((f) => f.name === 'envoy.yaml');
  assert.ok(file, `${name}: no envoy.yaml rendered`);
  assert.equal(file.mode, 0o400);
  return { text: file.content, argv: r.argv };
}

for (const name of ENVOY_CASES) {
  test(`envoy schema: ${name} is a valid v3 bootstrap (canonical, no warnings)`, async (t) => {
    const v = await envoyValidator(t);
    if (!v) return;
    const { text, argv } = bootstrapOf(name);
    const res = v.validate(v.parseText(text, 'envoy.yaml'), undefined, { canonical: true });
    assert.deepEqual(res.errors, [], `${name}:\n${text}`);
    assert.deepEqual(res.warnings, []);
    assert.deepEqual(argv.slice(0, 3), ['envoy', '-c', '/run/tee-init/envoy.yaml']);
  });

  test(`envoy sds: ${name} reads every certificate, key and CA through SDS files Envoy watches; reload none`, async (t) => {
    const v = await envoyValidator(t);
    const r = render(CASES[name]!);
    const secrets = checkSds(v, r, '/run/tee-init');
    // The material by its visible paths (OUT/NAME, stable across rotations), watched in OUT.
    const w = (CASES[name]!.run.with ?? {}) as Obj;
    assert.deepEqual(secrets.cert!.tls_certificate, {
      certificate_chain: { filename: '/run/tee-init/server.crt' },
      private_key: { filename: '/run/tee-init/server.key' },
      watched_directory: { path: '/run/tee-init' },
    });
    assert.deepEqual(secrets.ca!.validation_context, { trusted_ca: { filename: `/run/tee-init/${w.ca === 'alice_ca' ? 'alice-ca.pem' : 'ca.pem'}` }, watched_directory: { path: '/run/tee-init' } });
    assert.equal(r.reload, 'none', 'Envoy reloads by itself');
    assert.ok(r.argv.includes('--reject-unknown-dynamic-fields'), 'a wrong field in an SDS file fails at boot, not silently');
  });

  // The tunnel presets' two-listener shape has its own checks (envoy-tunnel.test.ts).
  if (!ENVOY_TUNNEL_CASES.includes(name)) test(`envoy security: ${name}`, async (t) => {
    const v = await envoyValidator(t);
    if (!v) return;
    const input = CASES[name]!;
    const w = (input.run.with ?? {}) as Obj;
    const b = v.parseText(bootstrapOf(name).text, 'envoy.yaml') as Obj;
    const listener = b.static_resources.listeners[0];
    const tls = listener.filter_chains[0].transport_socket.typed_config;
    assert.equal(tls.require_client_certificate, true);
    const ctx = tls.common_tls_context;
    // Certificate and key through SDS (the files: 'envoy sds' above), never inlined.
    assert.deepEqual(ctx.tls_certificate_sds_secret_configs.map((c: Obj) => c.name), ['cert']);
    assert.equal(JSON.stringify(b).includes('inline_'), name === 'envoy-http-direct', 'only the direct response body is inline');
    // SAN matching exactly as asked: static beside the SDS-delivered CA (Envoy merges the two).
    const san = (w.sanMatch ?? []).map((m: Obj) => {
      const { type, ...matcher } = m;
      return { san_type: type, matcher };
    });
    if (san.length === 0) {
      assert.equal(ctx.validation_context_sds_secret_config.name, 'ca');
      assert.equal(ctx.combined_validation_context, undefined);
    } else {
      assert.equal(ctx.validation_context_sds_secret_config, undefined);
      assert.deepEqual(ctx.combined_validation_context.default_validation_context, { match_typed_subject_alt_names: san });
      assert.equal(ctx.combined_validation_context.validation_context_sds_secret_config.name, 'ca');
    }
    assert.equal(ctx.validation_context, undefined, 'no static trust: it would never be re-read');
    // Admin: absent unless asked for, and then on loopback.
    if (w.adminPort === undefined) assert.equal(b.admin, undefined);
    else assert.deepEqual(b.admin, { address: { socket_address: { address: '127.0.0.1', port_value: Number(w.adminPort) } } });
    // Listener port is an integer; backend only on loopback.
    assert.equal(listener.address.socket_address.port_value, Number(w.listenPort ?? 8443));
    const clusters = b.static_resources.clusters as Obj[];
    if (w.backendPort === undefined) assert.deepEqual(clusters, []);
    else {
      assert.equal(clusters.length, 1);
      assert.deepEqual(clusters[0]!.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '127.0.0.1', port_value: Number(w.backendPort) });
    }
    // Access log to stdout.
    const filter = listener.filter_chains[0].filters[0].typed_config;
    assert.equal(filter.access_log[0].typed_config['@type'], 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog');
    if (name.startsWith('envoy-network')) assert.equal(filter.cluster, 'backend');
  });
}

test('envoy schema: the validator CLI accepts every rendered file with --canonical', async (t) => {
  if (!(await envoyValidator(t))) return;
  const dir = mkdtempSync(join(tmpdir(), 'tee-init-envoy-'));
  try {
    const files = ENVOY_CASES.map((name) => {
      const file = join(dir, `${name}.yaml`);
      writeFileSync(file, bootstrapOf(name).text);
      return file;
    });
    const r = await execa(process.execPath, [validatorPath, '--canonical', ...files], { cwd: repoRoot, reject: false });
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(r.stdout.split('\n').filter((l) => l.endsWith(': valid')).length, files.length, r.stdout);
    assert.equal(r.stderr, '', 'no warnings');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('envoy schema: the validator is not vacuous (it rejects a broken bootstrap)', async (t) => {
  const v = await envoyValidator(t);
  if (!v) return;
  const b = v.parseText(bootstrapOf('envoy-network').text, 'envoy.yaml') as Obj;
  b.static_resources.listeners[0].address.socket_address.port_value = 70000;
  b.static_resources.listeners[0].filter_chains[0].transport_socket.typed_config.require_client_certs = true;
  const { errors } = v.validate(b, undefined, { canonical: true });
  assert.ok(errors.some((e) => e.path.endsWith('port_value')), JSON.stringify(errors));
  assert.ok(errors.some((e) => e.message.includes('require_client_certs')), JSON.stringify(errors));
});
