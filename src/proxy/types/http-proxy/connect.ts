// CONNECT through the egress proxy. A token cannot be added to a TLS stream the proxy cannot
// read, so CONNECT is refused unless the destination is on the `tunnels:` allow-list; then the
// bytes are piped as they are.
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { guard } from '../../boundary.ts';
import { REASON_HEADER, type ForwardContext } from './forward.ts';
import { tunnelAllowed } from './routes.ts';

const AUTHORITY = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+)):(\d{1,5})$/;

function answer(socket: Duplex, status: string, reason: string): void {
  const r = reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
  socket.end(`HTTP/1.1 ${status}\r\n${REASON_HEADER}: ${r}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
}

export function tunnel(req: IncomingMessage, client: Duplex, head: Buffer, allow: readonly string[], ctx: ForwardContext, open: Set<Socket | Duplex>): void {
  const m = AUTHORITY.exec(req.url ?? '');
  const host = (m?.[1] ?? m?.[2] ?? '').toLowerCase();
  const port = Number(m?.[3]);
  if (!m || !(port >= 1 && port <= 65535)) {
    ctx.counters.refused++;
    return answer(client, '400 Bad Request', 'CONNECT needs HOST:PORT');
  }
  if (!tunnelAllowed(allow, host, port)) {
    ctx.counters.refused++;
    ctx.refused({ method: 'CONNECT', host, port }, `egress proxy refused CONNECT ${host}:${port}: not in tunnels`);
    return answer(client, '403 Forbidden', `CONNECT ${host}:${port} is refused: a token cannot be added inside TLS; call http://${host}/ through this proxy, or list ${host}:${port} under tunnels`);
  }
  ctx.counters.tunnels++;
  const up = connect({ host, port });
  open.add(up).add(client);
  // A throw in any handler of this tunnel ends this tunnel (both sockets), nothing else.
  const safe = <A extends unknown[]>(fn: (...args: A) => unknown) => guard<A>((err: unknown, ..._args: unknown[]) => ctx.fault(err, { host, port, kind: 'tunnel' }, up, client), fn);
  const timer = setTimeout(safe(() => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }))), ctx.connectTimeoutMs);
  let established = false;
  const done = () => {
    clearTimeout(timer);
    up.destroy();
    open.delete(up);
    open.delete(client);
    // Before the 200, the client is answered with the reason (end() closes it once written).
    if (established) client.destroy();
  };
  up.once('connect', safe(() => {
    clearTimeout(timer);
    established = true;
    up.setTimeout(ctx.idleTimeoutMs, safe(done));
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) up.write(head);
    up.pipe(client);
    client.pipe(up);
  }));
  up.on('error', safe((err: NodeJS.ErrnoException) => {
    if (!established) {
      ctx.counters.upstreamErrors++;
      ctx.failed({ host, port, kind: 'tunnel', code: err.code }, `egress proxy: CONNECT ${host}:${port}: ${err.code ?? err.message}`);
      answer(client, err.code === 'ETIMEDOUT' ? '504 Gateway Timeout' : '502 Bad Gateway', `CONNECT ${host}:${port}: ${err.code ?? 'failed'}`);
    }
    done();
  }));
  up.on('close', safe(done));
  client.on('error', safe(() => ((established = true), done())));
  client.on('close', safe(() => ((established = true), done())));
}
