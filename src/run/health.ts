// The health endpoint (`health: { listen: 127.0.0.1:PORT }`, loopback only): /healthz (the init
// answers), /readyz (every unit ready, else 503 naming those that are not), /metrics.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InitError } from '../lib/errors.ts';
import { EXIT } from '../lib/exit-codes.ts';
import type { Log } from '../lib/log.ts';
import { createFaultSink, guard } from '../proxy/boundary.ts';
import { metricsText } from './metrics.ts';
import type { RefreshStatus } from '../refresh/refresher.ts';
import type { UnitStatus } from './types.ts';

export interface Health {
  readonly port: number;
  close(): Promise<void>;
}

type Route = (units: () => UnitStatus[]) => { status: number; type: string; body: string };

const ROUTES: Record<string, Route> = {
  '/healthz': () => ({ status: 200, type: 'text/plain', body: 'ok\n' }),
  '/readyz': (units) => {
    const waiting = units().filter((u) => !u.ready);
    if (waiting.length === 0) return { status: 200, type: 'text/plain', body: 'ready\n' };
    return { status: 503, type: 'text/plain', body: `not ready: ${waiting.map((u) => `${u.name} (${u.state})`).join(', ')}\n` };
  },
};

export async function startHealth(listen: string, units: () => UnitStatus[], log: Log, refresh?: () => RefreshStatus): Promise<Health> {
  const startedAt = Date.now();
  const routes: Record<string, Route> = {
    ...ROUTES,
    '/metrics': (u) => ({ status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', body: metricsText(u(), startedAt, refresh?.()) }),
  };
  // Any process in the container may ask: a throw while answering ends that request, not the init.
  const fault = createFaultSink(log, 'health endpoint');
  const server: Server = createServer(guard((err, req, res) => fault(err, {}, res, req.socket), (req, res) => {
    const route = routes[(req.url ?? '/').split('?')[0]!];
    const reply = req.method !== 'GET' && req.method !== 'HEAD'
      ? { status: 405, type: 'text/plain', body: 'GET only\n' }
      : route ? route(units) : { status: 404, type: 'text/plain', body: 'try /healthz, /readyz or /metrics\n' };
    res.writeHead(reply.status, { 'content-type': reply.type, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : reply.body);
  }));
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  const i = listen.lastIndexOf(':');
  server.listen({ host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) });
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  } catch (err) {
    throw new InitError(EXIT.unavailable, `health.listen ${listen}: cannot listen (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose a free loopback port`);
  }
  const port = (server.address() as AddressInfo).port;
  log.info({ listen, port }, 'health endpoint listening (/healthz, /readyz, /metrics)');
  server.unref();
  return {
    port,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
