// The bulk loads of the data-plane benches (bench/proxy.ts, bench/tls-cpu.ts): a sink every
// server under test forwards to, and the senders.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { type AddressInfo, connect as tcpConnect, createServer, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { Lines } from '../test/helpers/lines.ts';
import { cpuSeconds, root } from './lib.ts';

/**
 * The bulk load: one sink every server forwards its bulk target to, and the senders. Native by
 * default (bench/load/main.go, one Go process): a Node client and sink moving ~1.4 GB/s on
 * loopback were the bottleneck of the plaintext rows, not the server measured.
 */
export interface Load {
  name: string;
  /** The sink's port: every server's bulk target. */
  port: number;
  /** `conns` connections to `port` send `bytes` in all; seconds until the sink has them all. */
  run(port: number, conns: number, bytes: number): Promise<number>;
  /** Connections the sink holds now. */
  open(): Promise<number>;
  /** CPU seconds the load has used so far (all its threads). */
  cpu(): number;
}

/** The old load, in this process: Node sockets writing 1 MiB blocks, a sink counting 'data'. */
export async function startNodeLoad(): Promise<Load> {
  let got = 0;
  let want = Infinity;
  let done: (() => void) | undefined;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= want) done?.();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const block = Buffer.alloc(1 << 20, 0x5a);
  // A sender's connection that fails mid-run (a reset from the hop under test) ends the run with a
  // line that says so, not an uncaught ECONNRESET.
  let senderFailed: (err: Error) => void = () => {};
  const send = async (port: number, bytes: number): Promise<Socket> => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.on('error', (err) => senderFailed(new Error(`the sender's connection through port ${port} failed: ${err.message} (reset by the hop under test; run its server with a log)`)));
    await once(s, 'connect');
    for (let sent = 0; sent < bytes; sent += block.length) {
      if (!s.write(sent + block.length <= bytes ? block : block.subarray(0, bytes - sent))) await once(s, 'drain');
    }
    return s;
  };
  return {
    name: 'Node (this process)',
    port: (server.address() as AddressInfo).port,
    async run(port, conns, bytes) {
      got = 0;
      want = bytes;
      const arrived = new Promise<void>((r) => (done = r));
      const failed = new Promise<never>((_, reject) => (senderFailed = reject));
      const t0 = performance.now();
      const sent = await Promise.race([Promise.all(Array.from({ length: conns }, (_, i) => send(port, i < conns - 1 ? Math.floor(bytes / conns) : bytes - Math.floor(bytes / conns) * (conns - 1)))), failed]);
      await Promise.race([arrived, failed]);
      const s = (performance.now() - t0) / 1000;
      for (const c of sent) c.destroy();
      return s;
    },
    open: async () => sockets.size,
    cpu: () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    },
  };
}

/** bench/load/main.go, built once per source version into .cache/; `track` is told of its process (to kill it on exit). */
export async function startGoLoad(track: (p: ChildProcess) => void): Promise<Load> {
  const source = join(root, 'bench', 'load', 'main.go');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const bin = join(root, '.cache', `bench-load-${hash}`);
  if (!existsSync(bin)) {
    mkdirSync(dirname(bin), { recursive: true });
    execFileSync('go', ['build', '-o', `${bin}.tmp`, source], { env: { ...process.env, GO111MODULE: 'off', GOCACHE: join(dirname(bin), 'go-build') }, stdio: 'inherit' });
    renameSync(`${bin}.tmp`, bin);
  }
  const proc = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  track(proc);
  const lines = new Lines(proc.stdout!);
  const port = Number((await lines.until(/^listening (\d+)$/, 30_000))[1]);
  const ask = async <T>(command: string): Promise<T> => {
    proc.stdin!.write(`${command}\n`);
    return JSON.parse(await lines.next(600_000)) as T;
  };
  return {
    name: 'native (bench/load/main.go)',
    port,
    run: async (to, conns, bytes) => (await ask<{ seconds: number }>(`run ${to} ${conns} ${bytes}`)).seconds,
    open: async () => (await ask<{ open: number }>('open')).open,
    cpu: () => cpuSeconds(proc.pid!),
  };
}
