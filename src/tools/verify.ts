// `tee-init verify`: openssl s_client for attested TLS. Connects once, offers ALPN tee-attest/1,
// reads the server's token and verifies it against this connection (signature, aud, exp, the
// exporter nonce, the required claims), then prints the verified claims (exit 0) or one line
// saying why not (77 refused, 69 unreachable, 64 usage).
import { readFileSync } from 'node:fs';
import { connect, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { claimsSummary } from '../attest/claims.ts';
import { createAttestationVerifier } from '../attest/verify-token.ts';
import { checkEndpointUrl } from '../config/endpoints.ts';
import { checkDuration } from '../lib/duration.ts';
import { EXIT } from '../lib/exit-codes.ts';
import { line } from '../lib/log.ts';
import { parseHostPort } from '../lib/address.ts';
import { ATTEST_ALPN, bindingNonce, readAndVerify } from '../proxy/types/tls/attest.ts';

export const VERIFY_USAGE = `Usage: tee-init verify --audience A [--require CLAIM=VALUE ...] [options] HOST:PORT
Checks that the tee-init listener at HOST:PORT (attest: on a tls listener) runs in a
Confidential Space VM with the claims you require, bound to this very TLS connection.
  --audience A          the audience the server's attest: names (required)
  --require CLAIM=VALUE a claim the token must carry (dotted path), repeatable
                        e.g. submods.container.image_digest=sha256:...
  --allow-debug         accept a debug image (dbgstat other than disabled-since-boot)
  --jwks URL            the attestation service's JWKS (default: from its discovery document)
  --pki-root URL        the PEM root PKI tokens chain to (default: the issuer's)
  --ca FILE             verify the server certificate against FILE (default: not checked;
                        the attestation is what is verified)
  --cert FILE --key FILE  a client certificate, for a strict (mutual TLS) listener
  --servername NAME     SNI and the name the certificate must carry with --ca
  --timeout DURATION    for the whole exchange (default 10s)
Prints the verified claims as JSON. Exit status: 0 verified, 77 refused, 69 unreachable, 64 usage.`;

export async function verifyCommand(argv: readonly string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: [...argv], allowPositionals: true, strict: true,
      options: {
        audience: { type: 'string' }, require: { type: 'string', multiple: true }, 'allow-debug': { type: 'boolean' },
        jwks: { type: 'string' }, 'pki-root': { type: 'string' }, ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
        servername: { type: 'string' }, timeout: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const o = v.values;
  if (o.help) return line(1, VERIFY_USAGE), EXIT.ok;
  if (!o.audience) return usage('--audience is required (the audience the server\'s attest: names)');
  if (v.positionals.length !== 1) return usage('give exactly one HOST:PORT');
  if (Boolean(o.cert) !== Boolean(o.key)) return usage('--cert and --key go together');
  for (const [flag, u] of [['--jwks', o.jwks], ['--pki-root', o['pki-root']]] as const) {
    if (u && checkEndpointUrl(u)) return usage(`${flag} ${u}: ${checkEndpointUrl(u)}`);
  }
  const require: Record<string, string> = {};
  for (const r of o.require ?? []) {
    const eq = r.indexOf('=');
    if (eq < 1) return usage(`--require ${r}: write CLAIM=VALUE`);
    require[r.slice(0, eq)] = r.slice(eq + 1);
  }
  const { ms: timeoutMs, problem } = checkDuration(o.timeout ?? '10s');
  if (problem) return usage(`--timeout: ${problem}`);
  let target;
  try {
    target = parseHostPort(v.positionals[0]!, 'HOST:PORT');
  } catch (err) {
    return usage((err as Error).message);
  }
  const where = v.positionals[0]!;
  const verify = createAttestationVerifier({ audience: o.audience, require, allowDebug: o['allow-debug'], jwks: o.jwks, pkiRoot: o['pki-root'], field: '--require' });

  let socket: TLSSocket | undefined;
  try {
    socket = connect({
      host: target.host, port: target.port, ALPNProtocols: [ATTEST_ALPN],
      ...(o.servername ? { servername: o.servername } : {}),
      ...(o.ca ? { ca: readFileSync(o.ca), rejectUnauthorized: true } : { rejectUnauthorized: false }),
      ...(o.cert ? { cert: readFileSync(o.cert), key: readFileSync(o.key!) } : {}),
    });
    const s = socket;
    const connected = new Promise<void>((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(Object.assign(new Error(`no verified answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs).unref());
    try {
      await Promise.race([connected, deadline]);
    } catch (err) {
      line(2, `tee-init verify: ${where}: cannot connect: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return EXIT.unavailable;
    }
    let claims;
    try {
      claims = await Promise.race([readAndVerify(s, verify), deadline]);
    } catch (err) {
      line(2, `tee-init verify: ${where}: refused: ${(err as Error).message}`);
      return EXIT.noPerm;
    }
    line(1, JSON.stringify({ verified: where, nonce: bindingNonce(s), serverCertificateChecked: Boolean(o.ca), ...claimsSummary(claims) }, null, 2));
    return EXIT.ok;
  } finally {
    socket?.destroy();
  }
}

function usage(why: string): number {
  line(2, `tee-init verify: ${why}\n${VERIFY_USAGE}`);
  return EXIT.usage;
}
