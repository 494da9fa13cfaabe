// The ports a boot will bind, tried before anything is fetched: a port in use (or one this
// user may not bind) is a config problem (78) found by `check` and by the boot alike, before
// any secret is read, rather than a failure (69) once the program is up.
import { createServer } from 'node:net';

export interface Port {
  /** The config field that names it (health.listen, listeners.NAME.listen). */
  field: string;
  host: string;
  port: number;
}

const WHY: Record<string, string> = {
  EADDRINUSE: 'is in use by another process: stop it or choose another port',
  EACCES: 'may not be bound by this user (a port below 1024 needs root or CAP_NET_BIND_SERVICE): choose a port of 1024 or more',
  EADDRNOTAVAIL: 'is not an address of this machine: use 127.0.0.1, [::1], 0.0.0.0 or an address of an interface',
};

/** Binds each address and lets it go at once; one line per address that cannot be bound. */
export async function portProblems(ports: readonly Port[]): Promise<string[]> {
  const out = await Promise.all(ports.map(async ({ field, host, port }) => {
    const code = await tryBind(host, port);
    if (code === undefined) return undefined;
    const shown = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    return `${field}: ${shown} ${WHY[code] ?? `cannot be bound (${code})`}`;
  }));
  return out.filter((x) => x !== undefined);
}

function tryBind(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'EINVAL'));
    // exclusive: in a cluster worker too, bind here rather than ask a primary.
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
