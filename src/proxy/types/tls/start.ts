// Starting a tls listener (no schema here: this runs in worker threads too, which need not load
// zod). The caller has waited for the upstream in server modes.
import type { TLSSocket } from 'node:tls';
import { parseHostPort, formatHostPort } from '../../../lib/address.ts';
import { createEngine } from '../../engine.ts';
import type { ListenerEnv, ListenerHandle } from '../../listener.ts';
import { LOG_LIMIT_DEFAULTS, limitedWarn } from '../../../lib/log-limit.ts';
import { metrics } from '../../stats.ts';
import { createAttestationVerifier } from '../../../attest/verify-token.ts';
import { configError } from '../../../lib/errors.ts';
import { type AttestServer, attestServer, readAndVerify } from './attest.ts';
import { createTlsClient } from './client.ts';
import type { TlsListenerConfig } from '../../../config/listeners/tls.ts';
import { loadMaterial, type TlsMaterial } from './context.ts';
import { createHttpForwarder, type HttpForwarder } from './http.ts';
import { createTlsServers } from './server.ts';

export async function startTls(c: TlsListenerConfig, env: ListenerEnv): Promise<ListenerHandle> {
  const field = env.field ?? `listeners.${env.name}`;
  const { log } = env;
  let material: TlsMaterial = loadMaterial(c, env.secret, field);
  const upstream = parseHostPort(c.connect, `${field}.connect`);
  const engine = createEngine({
    label: 'tls', field, upstream, log, upstreamKind: c.mode === 'client' ? 'remote peer' : 'upstream',
    timeouts: { handshakeMs: c.handshakeTimeout, connectMs: c.connectTimeout, idleMs: c.idleTimeout },
  });
  const { fault } = engine.ctx;
  let http: HttpForwarder | undefined;
  let attest: AttestServer | undefined;
  let refusals = 0;
  let setMaterial = (m: TlsMaterial) => void (material = m);
  let server;
  if (c.mode === 'client') {
    const a = c.verify?.attestation;
    const check = a && createAttestationVerifier({ audience: a.audience, require: a.require, allowDebug: a.allowDebug, jwks: a.jwks ?? env.jwks, pkiRoot: a.pkiRoot, field: `${field}.verify.attestation` });
    const verify = check && (async (upstream: TLSSocket) => {
      try {
        return await readAndVerify(upstream, check);
      } catch (err) {
        refusals++;
        throw err;
      }
    });
    server = createTlsClient({ material: () => material, serverName: c.tls.serverName, servers: c.servers, verify, fault }, engine.ctx);
  } else {
    if (c.attest) {
      if (!env.attester) throw configError(`${field}.attest: no attester was handed to this listener (a bug: please report it)`);
      attest = attestServer(env.attester, c.attest.audience, c.attest.type);
    }
    if (c.http) {
      http = createHttpForwarder(engine.ctx, {
        xfcc: c.http.xfcc, clientCert: c.http.clientCert, headersTimeoutMs: c.http.headersTimeout, own: () => material.own, fault, attest,
        warnSlowHeaders: limitedWarn(log, 'tls slow http headers', LOG_LIMIT_DEFAULTS),
      });
    }
    const servers = createTlsServers({
      permissive: c.mode === 'permissive',
      material: () => material,
      clients: c.clients,
      http,
      attest,
      alpn: c.tls.alpn,
      warnRefused: limitedWarn(log, 'tls refused clients', LOG_LIMIT_DEFAULTS),
      warnPlaintext: limitedWarn(log, 'tls plaintext clients', LOG_LIMIT_DEFAULTS),
      fault,
    }, engine.ctx);
    server = servers.listener;
    setMaterial = (m) => {
      servers.setMaterial(m);
      material = m;
    };
  }
  let address;
  try {
    address = await engine.serve(server, parseHostPort(c.listen, `${field}.listen`, true), c.maxConnections, env.reusePort);
  } catch (err) {
    http?.close();
    await engine.close();
    throw err;
  }
  log.info({
    mode: c.mode, listen: formatHostPort(address), connect: formatHostPort(upstream), tls: c.tls.tls12 ? 'TLSv1.2-1.3' : 'TLSv1.3',
    certificate: material.own.subject, ...(material.own.uris.length ? { uri: material.own.uris } : {}),
    ...(c.clients ? { clientRules: c.clients.length } : {}), ...(c.http ? { http: c.http } : {}), maxConnections: c.maxConnections,
  }, 'tls proxy listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    stats: () => ({
      ...metrics(engine.stats),
      ...(http ? { http_header_timeouts_total: http.headerTimeouts } : {}),
      ...attest?.stats(),
      ...(c.verify ? { attestation_refusals_total: refusals } : {}),
    }),
    async reload() {
      const next = loadMaterial(c, env.secret, field); // throws, keeping the old material
      setMaterial(next);
      log.info({ certificate: next.own.subject, certSha256: next.own.hash }, 'tls certificates reloaded for new connections');
    },
    close() {
      closing ??= (async () => {
        http?.close();
        await engine.close();
        log.info({ mode: c.mode, ...engine.stats }, 'tls proxy closed');
      })();
      return closing;
    },
  };
}
