// Typed options and "host:port" parsing: every mistake is a config error (78) naming the field.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { InitError } from '../../../src/lib/errors.ts';
import { parseHostPort, startPskProxy, type PskProxyOptions } from '../../../src/proxy/types/psk/index.ts';
import { clientOptions, IDENTITY, KEY, pskConnect, serverOptions, startProxy } from './peers.ts';

function configError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof InitError && err.exitCode === 78 && message.test(err.message));
}

async function refused(options: PskProxyOptions, message: RegExp): Promise<void> {
  await assert.rejects(startPskProxy(options), (err: unknown) => {
    assert.ok(err instanceof InitError, String(err));
    assert.equal(err.exitCode, 78);
    assert.match(err.message, message);
    return true;
  });
}

describe('parseHostPort', () => {
  test('IPv4, host names and bracketed IPv6', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:6379', 'psk.connect'), { host: '127.0.0.1', port: 6379 });
    assert.deepEqual(parseHostPort('0.0.0.0:8081', 'psk.listen'), { host: '0.0.0.0', port: 8081 });
    assert.deepEqual(parseHostPort('redis.internal:6379', 'psk.connect'), { host: 'redis.internal', port: 6379 });
    assert.deepEqual(parseHostPort('[::1]:6379', 'psk.connect'), { host: '::1', port: 6379 });
    assert.deepEqual(parseHostPort('[fd00::2:1]:443', 'psk.connect'), { host: 'fd00::2:1', port: 443 });
    assert.deepEqual(parseHostPort('127.0.0.1:0', 'psk.listen', true), { host: '127.0.0.1', port: 0 });
  });

  test('malformed addresses name the field', () => {
    for (const bad of ['::1:6379', '6379', ':6379', '127.0.0.1:', 'host:port', '[127.0.0.1]:80', '[::1]6379', 'a b:1', 'h:123456']) {
      configError(() => parseHostPort(bad, 'psk.connect'), /^psk\.connect: /);
    }
    configError(() => parseHostPort('127.0.0.1:0', 'psk.connect'), /psk\.connect: port must be 1-65535, got 0/);
    configError(() => parseHostPort('127.0.0.1:65536', 'psk.connect'), /port must be 1-65535/);
  });
});

describe('startPskProxy options', () => {
  test('{host, port} objects work as well as strings', async (t) => {
    const proxy = await startProxy(t, serverOptions(1, { listen: { host: '127.0.0.1', port: 0 }, ready: false }));
    assert.equal(proxy.address.host, '127.0.0.1');
    assert.ok(proxy.address.port > 0);
  });

  test('IPv6 loopback listener', async (t) => {
    const proxy = await startPskProxy(serverOptions(1, { listen: '[::1]:0', ready: false })).catch((e: InitError) => e);
    if (proxy instanceof InitError) return t.skip(`no IPv6 loopback here: ${proxy.message}`);
    t.after(() => proxy.close());
    assert.equal(proxy.address.host, '::1');
  });

  test('mistakes are config errors naming the field', async () => {
    await refused({ ...serverOptions(1), mode: 'both' } as unknown as PskProxyOptions, /psk\.mode must be server or client/);
    await refused(serverOptions(1, { identities: new Map() }), /psk\.identities: server mode needs at least one identity/);
    await refused(serverOptions(1, { identities: new Map([['x'.repeat(129), KEY]]) }), /an identity must be 1-128 bytes/);
    await refused(serverOptions(1, { identities: new Map([['', KEY]]) }), /an identity must be 1-128 bytes/);
    await refused(serverOptions(1, { identities: new Map([[IDENTITY, Buffer.alloc(15, 1)]]) }), /psk\.identities\.Client1: the key must be 16-256 bytes/);
    await refused(serverOptions(1, { identities: new Map([[IDENTITY, Buffer.alloc(257, 1)]]) }), /the key must be 16-256 bytes/);
    await refused(clientOptions(1, { identity: '' }), /psk\.identity: an identity must be/);
    await refused(clientOptions(1, { key: 'not a buffer' as unknown as Buffer }), /psk\.identity: the key must be/);
    await refused(serverOptions(1, { maxConnections: 0 }), /psk\.maxConnections must be a whole number/);
    await refused(serverOptions(1, { timeouts: { handshakeMs: 0 } }), /psk\.timeouts\.handshakeMs must be a number of ms ≥ 1/);
    await refused(serverOptions(1, { timeouts: { idleMs: -1 } }), /psk\.timeouts\.idleMs must be a number of ms ≥ 0/);
    await refused(serverOptions(1, { listen: 'nowhere' }), /psk\.listen: "nowhere" is not host:port/);
    await refused(serverOptions(1, { connect: '127.0.0.1:0' }), /psk\.connect: port must be 1-65535/);
  });

  test('a listen address in use is a config error naming psk.listen', async (t) => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const port = (taken.address() as { port: number }).port;
    await refused(serverOptions(1, { listen: `127.0.0.1:${port}`, ready: false }), new RegExp(`psk\\.listen 127\\.0\\.0\\.1:${port}: cannot listen \\(EADDRINUSE\\)`));
  });

  test('the proxy keeps its own copy of the keys: the caller may wipe its buffers', async (t) => {
    const echo = createServer((s) => s.pipe(s)).listen(0, '127.0.0.1');
    await once(echo, 'listening');
    t.after(() => echo.close());
    const mine = Buffer.from(KEY);
    const proxy = await startProxy(t, serverOptions((echo.address() as { port: number }).port, { identities: new Map([[IDENTITY, mine]]) }));
    mine.fill(0);
    const c = await pskConnect(proxy.address.port);
    c.destroy();
  });
});
