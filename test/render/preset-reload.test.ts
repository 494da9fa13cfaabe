// Each preset's default way to apply rotated secrets (Rendered.reload), and the admin sockets the
// redis and postgres presets use: rendered from the same paths as the program, refused when the
// path cannot be a socket. The real programs doing the reloads: test/integration/preset-reload.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { render, type RunSpec } from '../../src/render/index.ts';
import { throwsConfigError } from './assert-config-error.ts';
import { OUT, SECRETS } from './cases.ts';

const rendered = (run: RunSpec, outputDir = OUT, secrets = SECRETS) => render({ run, secrets, outputDir });

describe('redis: CONFIG SET through the admin socket', () => {
  test('reload re-sets the three TLS files by their (never changing) paths; -e makes an error reply fail', () => {
    const out = rendered({ preset: 'redis', with: { cert: 'cert', key: 'key', ca: 'ca' } });
    assert.deepEqual(out.reload, {
      exec: ['redis-cli', '-e', '-s', `${OUT}/redis.sock`, 'CONFIG', 'SET', 'tls-cert-file', SECRETS.cert!.path, 'tls-key-file', SECRETS.key!.path, 'tls-ca-cert-file', SECRETS.ca!.path],
      timeoutMs: 10_000,
    });
  });
  test('renamed secrets are the ones reloaded', () => {
    const secrets = { ...SECRETS, other_ca: { path: `${OUT}/other-ca.pem` } };
    const out = rendered({ preset: 'redis', with: { ca: 'other_ca' } }, OUT, secrets);
    assert.ok(typeof out.reload === 'object' && 'exec' in out.reload);
    assert.equal(out.reload.exec.at(-1), `${OUT}/other-ca.pem`);
  });
  test('the socket the server opens is the one reload and ready use', () => {
    const out = rendered({ preset: 'redis' });
    const at = (flag: string) => out.argv[out.argv.indexOf(flag) + 1];
    assert.equal(at('--unixsocket'), `${OUT}/redis.sock`);
    assert.equal(at('--unixsocketperm'), '700');
    assert.deepEqual(out.ready, { unix: `${OUT}/redis.sock` });
  });
});

describe('postgres: SIGHUP', () => {
  test('reload is a SIGHUP; stop stays SIGINT', () => {
    const out = rendered({ preset: 'postgres' });
    assert.deepEqual(out.reload, { signal: 'SIGHUP' });
    assert.equal(out.stopSignal, 'SIGINT');
  });
});

describe('presets without a reload of their own', () => {
  test('none: nothing (the config says how, or the program keeps what it read)', () => {
    assert.equal(rendered({ command: ['prog'] }).reload, undefined);
  });
});

describe('an admin socket path that cannot work is a config error', () => {
  // 107 bytes is Linux's limit (sun_path[108] with the NUL); redis and postgres fail at start past it.
  const dirOf = (socketName: string, length: number) => `/dev/shm/${'d'.repeat(length - '/dev/shm/'.length - socketName.length - 1)}`;
  test('redis: 107 bytes is fine, 108 names output.dir', () => {
    const dir = dirOf('redis.sock', 107);
    assert.deepEqual(rendered({ preset: 'redis' }, dir).ready, { unix: `${dir}/redis.sock` });
    throwsConfigError(() => rendered({ preset: 'redis' }, dirOf('redis.sock', 108)), /^output\.dir: the redis preset's socket ".*\/redis\.sock" is 108 bytes long; a unix socket path can have at most 107: use a shorter output\.dir$/);
  });
  test('postgres: the port is part of the path', () => {
    const dir = dirOf('.s.PGSQL.5432', 107);
    assert.deepEqual(rendered({ preset: 'postgres' }, dir).ready, { unix: `${dir}/.s.PGSQL.5432` });
    throwsConfigError(() => rendered({ preset: 'postgres', with: { port: 15432 } }, dir), /^output\.dir: the postgres preset's socket ".*\/\.s\.PGSQL\.15432" is 108 bytes long/);
  });
  test('multi-byte characters count as bytes (65 characters, 110 bytes)', () => {
    throwsConfigError(() => rendered({ preset: 'redis' }, `/dev/shm/${'é'.repeat(45)}`), /is 110 bytes long/);
  });
  test('a secret whose file takes the socket\'s name is refused (the server would unlink it to bind)', () => {
    throwsConfigError(() => rendered({ preset: 'redis' }, OUT, { ...SECRETS, sock: { path: `${OUT}/redis.sock` } }), 'secrets.sock.file: "redis.sock" is the redis preset\'s socket in the output directory: give the secret another file: name');
    throwsConfigError(() => rendered({ preset: 'postgres' }, OUT, { ...SECRETS, s: { path: `${OUT}/.s.PGSQL.5432` } }), 'secrets.s.file: ".s.PGSQL.5432" is the postgres preset\'s socket');
  });
});
