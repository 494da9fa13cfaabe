// Small network helpers for the end-to-end tests.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:tls';

export { freePort } from '../helpers/net.ts';

/** The TCP ports process `pid` is listening on (from /proc: its socket inodes in LISTEN state). */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (HEX_IP:HEX_PORT), st is f[3] (0A = LISTEN), inode is f[9].
      if (f[3] === '0A' && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return [...ports].sort((a, b) => a - b);
}

export interface TlsClientOptions {
  port: number;
  host?: string;
  ca: string;
  cert?: string;
  key?: string;
}

/** Connects with TLS, reads until the server closes; resolves with what arrived or the error. */
export function tlsRead(o: TlsClientOptions): Promise<{ data: string; error?: string }> {
  return new Promise((resolve) => {
    let data = '';
    const socket = connect({
      host: o.host ?? '127.0.0.1',
      port: o.port,
      ca: readFileSync(o.ca),
      ...(o.cert ? { cert: readFileSync(o.cert), key: readFileSync(o.key!) } : {}),
      servername: 'localhost',
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ data, error: err.code ?? err.message }));
    socket.on('close', () => resolve({ data }));
  });
}
