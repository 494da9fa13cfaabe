import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCli } from '../../src/cli.ts';
import { InitError } from '../../src/lib/errors.ts';

const usage = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  assert.throws(() => parseCli(argv, env), (e: unknown) => e instanceof InitError && e.exitCode === 64);

test('options end at the first non-option: the rest is the command, its options included', () => {
  const cli = parseCli(['--grace-period', '2s', 'redis-server', '--port', '0', '--', 'x'], {});
  assert.deepEqual(cli.command, ['redis-server', '--port', '0', '--', 'x']);
  assert.equal(cli.gracePeriodMs, 2000);
});

test('`--` ends the options', () => {
  assert.deepEqual(parseCli(['-g', '--', '--not-an-option'], {}).command, ['--not-an-option']);
  assert.equal(parseCli(['-g', '--', 'x'], {}).signalGroup, true);
});

test('every option, long and short, and the --opt=value form', () => {
  const cli = parseCli(['-c', 'a.yaml', '--log-level=debug', '-g', '-s', '--grace-period=1500ms'], {});
  assert.equal(cli.configPath, 'a.yaml');
  assert.equal(cli.logLevel, 'debug');
  assert.equal(cli.signalGroup, true);
  assert.equal(cli.subreaper, true);
  assert.equal(cli.gracePeriodMs, 1500);
  assert.deepEqual(cli.command, []);
});

test('TEE_INIT_* variables mirror the options, and the command line wins', () => {
  const env = { TEE_INIT_CONFIG: '/etc/tee-init.yaml', TEE_INIT_LOG_LEVEL: 'warn', TEE_INIT_GRACE_PERIOD: '3s', TEE_INIT_SIGNAL_GROUP: 'true', TEE_INIT_SUBREAPER: '0' };
  const fromEnv = parseCli([], env);
  assert.equal(fromEnv.configPath, '/etc/tee-init.yaml');
  assert.equal(fromEnv.logLevel, 'warn');
  assert.equal(fromEnv.gracePeriodMs, 3000);
  assert.equal(fromEnv.signalGroup, true);
  assert.equal(fromEnv.subreaper, false);
  const cli = parseCli(['--config', 'other.yaml', '--log-level', 'error', '--grace-period', '1s'], env);
  assert.equal(cli.configPath, 'other.yaml');
  assert.equal(cli.logLevel, 'error');
  assert.equal(cli.gracePeriodMs, 1000);
});

test('subcommands', () => {
  assert.equal(parseCli(['check', '--config', 'x.yaml'], {}).subcommand, 'check');
  assert.equal(parseCli(['--help'], {}).subcommand, 'help');
  assert.equal(parseCli(['-V'], {}).subcommand, 'version');
  // A program that happens to be called `check` runs after `--`.
  assert.deepEqual(parseCli(['--', 'check'], {}).command, ['check']);
});

test('usage errors: exit 64', () => {
  usage([]); // nothing to run
  usage(['--bogus', 'true']);
  usage(['--grace-period', 'soon', 'true']);
  usage(['--log-level', 'loud', 'true']);
  usage(['check']); // check needs a config
  usage(['--show', '--config', 'x']); // --show goes with check
  usage(['true'], { TEE_INIT_SIGNAL_GROUP: 'maybe' });
  usage(['--config']); // missing value
});

test('--stop-signal and TEE_INIT_STOP_SIGNAL: a signal name or number; anything else is a usage error', () => {
  assert.equal(parseCli(['--stop-signal', 'SIGINT', '--', 'x'], {}).stopSignal, 'SIGINT');
  assert.equal(parseCli(['--stop-signal=quit', '--', 'x'], {}).stopSignal, 'SIGQUIT');
  assert.equal(parseCli(['--', 'x'], { TEE_INIT_STOP_SIGNAL: '2' }).stopSignal, 'SIGINT');
  assert.equal(parseCli(['--stop-signal', 'SIGTERM', '--', 'x'], { TEE_INIT_STOP_SIGNAL: 'SIGINT' }).stopSignal, 'SIGTERM');
  assert.equal(parseCli(['--', 'x'], {}).stopSignal, undefined);
  usage(['--stop-signal', 'SIGSTOP', '--', 'x']);
  usage(['--', 'x'], { TEE_INIT_STOP_SIGNAL: 'soon' });
});

test('check: --show, --etc DIR and a COMMAND after the config, as the boot would take it', () => {
  const cli = parseCli(['check', '--config', 'x.yaml', '--show', '--etc', '/img/etc', '--', 'my-server', '--port', '1'], {});
  assert.equal(cli.subcommand, 'check');
  assert.equal(cli.show, true);
  assert.equal(cli.etc, '/img/etc');
  assert.deepEqual(cli.command, ['my-server', '--port', '1']);
  usage(['--etc', '/x', '--config', 'x']); // --etc goes with check
});

test('the grace period follows the one duration rule: at most 596h, from the option or the variable', () => {
  assert.equal(parseCli(['--grace-period', '596h', 'x'], {}).gracePeriodMs, 596 * 3_600_000);
  assert.equal(parseCli(['--grace-period', '0', 'x'], {}).gracePeriodMs, 0);
  for (const bad of ['1000h', '597h', '9'.repeat(400), '1e400', '-1s', 'NaN']) {
    usage(['--grace-period', bad, 'x']);
    usage(['x'], { TEE_INIT_GRACE_PERIOD: bad });
  }
  assert.throws(() => parseCli(['x'], { TEE_INIT_GRACE_PERIOD: '1000h' }), /^InitError: TEE_INIT_GRACE_PERIOD: "1000h" is longer than the longest timer/);
});
