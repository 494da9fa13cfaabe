// Bad input is a config error (exit 78) whose one-line message starts with the field at fault.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { render, requiredSecrets, type RenderInput, type RunSpec } from '../../src/render/index.ts';
import { throwsConfigError } from './assert-config-error.ts';
import { OUT, SECRETS } from './cases.ts';

const run = (r: RunSpec, secrets: RenderInput['secrets'] = SECRETS, outputDir = OUT) => () => render({ run: r, secrets, outputDir });
const without = (name: string) => Object.fromEntries(Object.entries(SECRETS).filter(([k]) => k !== name));

describe('preset secrets', () => {
  for (const preset of ['redis', 'envoy-http', 'envoy-network'] as const) {
    const w = preset === 'envoy-network' ? { backendPort: 6379 } : {};
    test(`${preset}: a missing default secret names run.preset and both fixes`, () => {
      throwsConfigError(
        run({ preset, with: w }, without('cert')),
        `run.preset: the ${preset} preset needs secret "cert" (the server certificate chain), which is not configured: add secrets.cert with file:, or name another secret in run.with.cert`,
      );
    });
    test(`${preset}: a renamed secret that is missing names run.with.<role>`, () => {
      throwsConfigError(run({ preset, with: { ...w, ca: 'bob_ca' } }), `run.with.ca: the ${preset} preset needs secret "bob_ca"`);
    });
    test(`${preset}: a secret without file: is refused`, () => {
      throwsConfigError(run({ preset, with: { ...w, key: 'share_a' } }), `run.with.key: the ${preset} preset passes secret "share_a" (the server certificate's private key) to the program as a file, but it has no file: (add file: to secrets.share_a)`);
    });
    test(`${preset}: requiredSecrets lists the preset's secrets (renamed ones included)`, () => {
      assert.deepEqual(requiredSecrets({ preset, with: { ...w, ca: 'alice_ca' } }), ['alice_ca', 'cert', 'key']);
    });
  }
});

describe('placeholders', () => {
  test('a secret without a file, in the command', () => {
    throwsConfigError(run({ command: ['prog', '--tls-cert', '{{secrets.share_a.path}}'] }), 'run.command[2]: {{secrets.share_a.path}}: secret "share_a" has no file: (add file: to secrets.share_a)');
  });
  test('a secret that is not configured, in env', () => {
    throwsConfigError(run({ command: ['prog'], env: { CERT: '{{secrets.nope.path}}' } }), 'run.env.CERT: {{secrets.nope.path}}: no secret "nope" is configured (secrets: ca, cert, key, alice_ca, token, share_a)');
  });
  test('an unknown placeholder, in a file template', () => {
    throwsConfigError(run({ command: ['prog'], files: [{ name: 'a.yaml', template: { x: [1, { y: '{{secret.cert.path}}' }] } }] }), 'run.files[0].template.x[1].y: {{secret.cert.path}}: unknown placeholder (known: {{secrets.NAME.path}}, {{output.dir}}, {{with.KEY}})');
  });
  test('a bare {{KEY}} is not a with value: with values are {{with.KEY}}', () => {
    throwsConfigError(run({ command: ['prog', '{{port}}'], with: { port: 1 } }), 'run.command[1]: {{port}}: unknown placeholder');
  });
  test('a with key that is not there', () => {
    throwsConfigError(run({ command: ['prog', '{{with.port}}'] }), 'run.command[1]: {{with.port}}: run.with has no "port"');
  });
  test("a preset's internal values are not offered to user templates", () => {
    throwsConfigError(run({ preset: 'redis', with: { args: ['--x', '{{tls.cert}}'] } }), 'run.with.args[1]: {{tls.cert}}: unknown placeholder');
  });
  test('a list value inside a string', () => {
    throwsConfigError(run({ command: ['prog', '--peers={{with.peers}}'], with: { peers: ['a', 'b'] } }), 'run.command[1]: {{with.peers}}: is a list; only a whole-value placeholder in a data template can take it');
  });
  test('a placeholder in a key', () => {
    throwsConfigError(run({ command: ['prog'], files: [{ name: 'a.json', template: { '{{with.k}}': 1 } }], with: { k: 'x' } }), 'run.files[0].template["{{with.k}}"]: placeholders are not expanded in keys');
  });
});

describe('with parameters', () => {
  for (const bad of [0, 65536, -1, 1.5, 'abc', '80x', true, null, [6379], {}]) {
    test(`tlsPort ${JSON.stringify(bad)} is not a port`, () => {
      throwsConfigError(run({ preset: 'redis', with: { tlsPort: bad } }), 'run.with.tlsPort: expected a port number 1-65535, got ');
    });
  }
  test('a port as a string of digits is accepted (environment overrides are text)', () => {
    assert.ok(render({ run: { preset: 'redis', with: { tlsPort: '16379' } }, secrets: SECRETS, outputDir: OUT }).argv.includes('16379'));
  });
  test('envoy-network needs a backend', () => {
    throwsConfigError(run({ preset: 'envoy-network' }), 'run.with.backendPort: expected a port number 1-65535, got nothing');
  });
  test('envoy ports must differ', () => {
    throwsConfigError(run({ preset: 'envoy-http', with: { listenPort: 8080, backendPort: 8080 } }), 'run.with.backendPort: 8080 is also run.with.listenPort');
    throwsConfigError(run({ preset: 'envoy-http', with: { adminPort: 8443 } }), 'run.with.adminPort: 8443 is also run.with.listenPort');
  });
  test('an unknown parameter (a typo) is refused, with the list of parameters', () => {
    throwsConfigError(run({ preset: 'redis', with: { tlsport: 1 } }), 'run.with.tlsport: not a parameter of the redis preset (parameters: tlsPort, bind, ca, cert, key, args)');
  });
  test('with must be a mapping', () => {
    throwsConfigError(run({ preset: 'redis', with: ['x'] as never }), 'run.with: expected a mapping, got a list');
  });
  test('bad listen and bind addresses', () => {
    throwsConfigError(run({ preset: 'envoy-http', with: { listenAddress: 'localhost' } }), 'run.with.listenAddress: expected an IP address, got "localhost"');
    throwsConfigError(run({ preset: 'redis', with: { bind: ['127.0.0.1', '1.2.3.4 5.6.7.8'] } }), 'run.with.bind[1]: expected an IP address');
  });
  test('bad sanMatch entries', () => {
    const san = (m: unknown) => run({ preset: 'envoy-http', with: { sanMatch: [m] } });
    throwsConfigError(san({ exact: 'x' }), 'run.with.sanMatch[0].type: expected one of DNS, URI, EMAIL, IP_ADDRESS, got nothing');
    throwsConfigError(san({ type: 'dns', exact: 'x' }), 'run.with.sanMatch[0].type: expected one of DNS, URI, EMAIL, IP_ADDRESS, got "dns"');
    throwsConfigError(san({ type: 'DNS', exact: 'x', suffix: 'y' }), 'run.with.sanMatch[0]: expected type and exactly one of exact, prefix, suffix, contains, got exact, suffix');
    throwsConfigError(san({ type: 'DNS', regex: 'x' }), 'run.with.sanMatch[0]: expected type and exactly one of');
    throwsConfigError(san({ type: 'DNS', exact: '' }), 'run.with.sanMatch[0].exact: expected a non-empty string');
    throwsConfigError(run({ preset: 'envoy-http', with: { sanMatch: 'DNS:x' } }), 'run.with.sanMatch: expected a list');
  });
  test('bad logLevel and args', () => {
    throwsConfigError(run({ preset: 'envoy-http', with: { logLevel: 'verbose' } }), 'run.with.logLevel: expected one of trace, debug, info, warning, error, critical, off, got "verbose"');
    throwsConfigError(run({ preset: 'redis', with: { args: '--maxmemory 1gb' } }), 'run.with.args: expected a list');
    throwsConfigError(run({ preset: 'redis', with: { args: ['--x', 1] } }), 'run.with.args[1]: expected a non-empty string, got 1');
  });
});

describe('run', () => {
  test('an unknown preset', () => {
    throwsConfigError(run({ preset: 'nginx' as never }), 'run.preset: unknown preset "nginx" (presets: redis, envoy-http, envoy-network, envoy-tunnel-client, envoy-tunnel-server, postgres, none)');
  });
  test('a command next to a preset', () => {
    throwsConfigError(run({ preset: 'redis', command: ['redis-server'] }), 'run.command: the redis preset builds the command itself; put extra arguments in run.with.args, or use preset: none');
  });
  test('nothing to run', () => {
    throwsConfigError(run({}), 'run.command: nothing to run');
    throwsConfigError(run({ command: [] }), 'run.command: nothing to run');
  });
  test('a shell string is not a command', () => {
    throwsConfigError(run({ command: 'redis-server --port 0' as never }), 'run.command: expected a list');
  });
  test('a NUL byte in an argument or env value', () => {
    throwsConfigError(run({ command: ['prog', 'a\0b'] }), 'run.command[1]: contains a NUL byte');
    throwsConfigError(run({ command: ['prog', '{{with.x}}'], with: { x: 'a\0b' } }), 'run.command[1]: {{with.x}}: the value contains a NUL byte');
    throwsConfigError(run({ command: ['prog'], env: { X: 'a\0' } }), 'run.env.X: contains a NUL byte');
  });
  test('bad env names and values', () => {
    throwsConfigError(run({ command: ['prog'], env: { 'A=B': 'x' } }), 'run.env["A=B"]: not a valid environment variable name');
    throwsConfigError(run({ command: ['prog'], env: { A: ['x'] as never } }), 'run.env.A: expected a string, got a list');
  });
  test('output.dir must be absolute', () => {
    throwsConfigError(run({ command: ['prog'] }, SECRETS, 'run/tee-init'), 'output.dir: expected an absolute path, got "run/tee-init"');
  });
  test('without an output directory: a plain command renders; a preset, files or {{output.dir}} cannot', () => {
    for (const none of ['', undefined]) {
      assert.deepEqual(render({ run: { command: ['p', '{{with.x}}'], with: { x: 1 } }, secrets: {}, outputDir: none }), { argv: ['p', '1'], env: {}, files: [] });
      const noDir = (r: RunSpec) => () => render({ run: r, secrets: SECRETS, outputDir: none });
      throwsConfigError(noDir({ preset: 'redis' }), 'output.dir: the redis preset needs an output directory for its files');
      throwsConfigError(noDir({ command: ['p'], files: [{ name: 'a', template: 'x' }] }), 'run.files: rendered files need an output directory (output.dir)');
      throwsConfigError(noDir({ command: ['p', '{{output.dir}}'] }), 'run.command[1]: {{output.dir}}: this run has no output directory (set output.dir)');
    }
  });
});

describe('run.files', () => {
  const file = (f: Record<string, unknown>, preset: RunSpec['preset'] = 'none', w: Record<string, unknown> = {}) =>
    run({ preset, with: w, command: preset === 'none' ? ['prog'] : undefined, files: [f as never] });
  test('names are plain file names', () => {
    for (const name of ['../x', 'a/b', '', '.', '..']) throwsConfigError(file({ name, template: 'x' }), 'run.files[0].name: expected a plain file name');
  });
  test('a file may not replace a secret or the preset\'s file', () => {
    throwsConfigError(file({ name: 'server.key', template: 'x' }), 'run.files[0].name: "server.key" is already the file of secrets.key');
    throwsConfigError(file({ name: 'envoy.yaml', template: {} }, 'envoy-http'), 'run.files[0].name: "envoy.yaml" is already the envoy-http preset\'s file');
    throwsConfigError(run({ command: ['prog'], files: [{ name: 'a', template: 'x' }, { name: 'a', template: 'y' }] }), 'run.files[1].name: "a" is already run.files[0]');
    throwsConfigError(
      run({ preset: 'envoy-http' }, { ...SECRETS, ca: { path: `${OUT}/envoy.yaml` } }),
      'run.preset: the envoy-http preset writes "envoy.yaml", which is already the file of secrets.ca: give that secret another file: name',
    );
  });
  test('modes', () => {
    for (const mode of ['0777', '0775', '0466', '0200', '04400', 'rw', 0o1400, -1]) throwsConfigError(file({ name: 'a', template: 'x', mode }), 'run.files[0].mode: expected a file mode');
    assert.equal(render({ run: { command: ['p'], files: [{ name: 'a', template: 'x', mode: '0440' }] }, secrets: SECRETS, outputDir: OUT }).files[0]!.mode, 0o440);
    assert.equal(render({ run: { command: ['p'], files: [{ name: 'a', template: 'x', mode: 0o600 }] }, secrets: SECRETS, outputDir: OUT }).files[0]!.mode, 0o600);
    assert.equal(render({ run: { command: ['p'], files: [{ name: 'run.sh', template: 'exec x', mode: '0500' }] }, secrets: SECRETS, outputDir: OUT }).files[0]!.mode, 0o500);
  });
  test('formats', () => {
    throwsConfigError(file({ name: 'a.conf', template: { a: 1 } }), 'run.files[0].name: a data template is written as JSON or YAML: name the file *.json, *.yaml or *.yml');
    assert.equal(render({ run: { command: ['p'], files: [{ name: 'a.conf', template: { a: 1 }, format: 'json' }] }, secrets: SECRETS, outputDir: OUT }).files[0]!.content, '{\n  "a": 1\n}\n');
    throwsConfigError(file({ name: 'a.json', template: 'x', format: 'json' }), 'run.files[0].format: json needs a data template');
    throwsConfigError(file({ name: 'a', template: { a: 1 }, format: 'text' }), 'run.files[0].format: text needs a string template');
    throwsConfigError(file({ name: 'a', template: { a: 1 }, format: 'toml' }), 'run.files[0].format: expected one of json, yaml, text, got "toml"');
    throwsConfigError(file({ name: 'a', template: 42 }), 'run.files[0].template: expected text, a mapping or a list, got 42');
  });
});

describe('requiredSecrets', () => {
  test('the none preset: every {{secrets.NAME.path}} in command, env and files', () => {
    assert.deepEqual(
      requiredSecrets({
        command: ['prog', '{{secrets.cert.path}}'],
        env: { K: '{{ secrets.key.path }}' },
        files: [{ name: 'a.json', template: { ca: ['{{secrets.ca.path}}'] } }],
        with: { ignored: '{{secrets.token.path}}' },
      }),
      ['cert', 'key', 'ca'],
    );
  });
  test('a preset with extra arguments', () => {
    assert.deepEqual(requiredSecrets({ preset: 'redis', with: { args: ['--x', '{{secrets.token.path}}'] } }), ['ca', 'cert', 'key', 'token']);
  });
  test('fails like render on a bad preset or parameter', () => {
    throwsConfigError(() => requiredSecrets({ preset: 'redis', with: { nope: 1 } }), 'run.with.nope: not a parameter');
  });
});
