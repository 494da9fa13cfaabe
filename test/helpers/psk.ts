// A TLS-PSK client for the integration tests: openssl s_client, the peer a collaborator would use.
import { execa } from 'execa';

/** One RESP PING through openssl s_client with `key`: true when +PONG came back. */
export async function pingOverPsk(port: number, key: string, identity = 'Client1', extra: string[] = ['-tls1_3']): Promise<boolean> {
  const proc = execa('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-psk', key, '-psk_identity', identity, ...extra, '-quiet'], {
    stdin: 'pipe', reject: false, timeout: 10_000,
  });
  proc.stdin!.write('PING\r\n');
  let out = '';
  const pong = await new Promise<boolean>((resolve) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('+PONG')) resolve(true);
    });
    void proc.then(() => resolve(out.includes('+PONG'))); // a failed handshake ends s_client
  });
  proc.kill('SIGTERM');
  await proc;
  return pong;
}
