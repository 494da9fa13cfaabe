// Raw mode passes ALPN through (tls.alpn): a client that insists on h2 (gRPC, curl --http2)
// gets it selected and speaks HTTP/2 to the program through the byte pipe; a listener without
// `alpn:` selects nothing, as before; a client offering none of the listed gets no ALPN.
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { once } from 'node:events';
import { createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { needs } from '../../helpers/tools.ts';
import { filePki, startTls } from './peers.ts';

const shared = filePki('tee-init-tls-alpn-');

/** An h2c program (HTTP/2 without TLS, prior knowledge): answers with the protocol version it spoke. */
async function h2cProgram(t: TestContext): Promise<number> {
  const server = createServer((req, res) => res.end(`spoke HTTP/${req.httpVersion}\n`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

async function sClientAlpn(port: number, offer: string): Promise<string> {
  const r = await execa('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', shared.pki.ca.cert,
    '-cert', shared.pki.client.cert, '-key', shared.pki.client.key, '-alpn', offer], { input: '', reject: false, timeout: 30_000 });
  return /ALPN protocol: (\S+)/.exec(`${r.stdout}${r.stderr}`)?.[1] ?? (/No ALPN negotiated/.test(`${r.stdout}${r.stderr}`) ? 'none' : `? ${r.stderr}`);
}

describe('ALPN in raw mode', () => {
  test('alpn: [h2]: curl --http2 speaks HTTP/2 to an h2c program through the listener', async (t) => {
    if (!needs(t, 'curl', 'apt-get install curl')) return;
    const program = await h2cProgram(t);
    const l = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${program}`, tls: { cert: 'cert', key: 'key', ca: 'ca', alpn: ['h2'] } });
    const r = await execa('curl', ['-sS', '--http2', '--max-time', '20', '--cacert', shared.pki.ca.cert, '--cert', shared.pki.client.cert, '--key', shared.pki.client.key,
      `https://127.0.0.1:${l.port}/`], { reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'spoke HTTP/2.0');
  });

  test('what is selected: a listed protocol the client offers; none without alpn:, or when the client offers none of them', async (t) => {
    if (!needs(t, 'openssl', 'apt-get install openssl')) return;
    const program = await h2cProgram(t);
    const listed = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${program}`, tls: { cert: 'cert', key: 'key', ca: 'ca', alpn: ['h2', 'http/1.1'] } });
    const bare = await startTls(t, shared.pki, { mode: 'strict', connect: `127.0.0.1:${program}` });
    assert.equal(await sClientAlpn(listed.port, 'h2'), 'h2');
    assert.equal(await sClientAlpn(listed.port, 'http/1.1,h2'), 'h2', 'the listener\'s order decides');
    assert.equal(await sClientAlpn(listed.port, 'spdy/3'), 'none', 'nothing listed: no ALPN, and no refusal');
    assert.equal(await sClientAlpn(bare.port, 'h2'), 'none', 'without alpn:, as before');
  });
});
