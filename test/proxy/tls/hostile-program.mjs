// An HTTP "program" that answers with raw bytes chosen by the request path: what a buggy or
// hostile backend can send a tls listener in http: mode. Any other path: 200 "ok", keep-alive.
// Usage: node hostile-program.mjs PORT (0 = any); prints "listening PORT" once it accepts.
import { createServer } from 'node:net';

export const RAW = {
  '/ctl-reason': 'HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\n\r\nok',
  '/status-099': 'HTTP/1.1 099 X\r\nContent-Length: 2\r\n\r\nok',
  '/status-000': 'HTTP/1.1 000 X\r\nContent-Length: 2\r\n\r\nok',
  '/status-999': 'HTTP/1.1 999 X\r\nContent-Length: 2\r\n\r\nok',
  '/switching': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nhello',
  '/bad-header': 'HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok',
};

const server = createServer((s) => {
  s.on('error', () => {});
  let buf = '';
  s.on('data', (c) => {
    buf += c.toString('latin1');
    let end;
    while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
      const path = buf.slice(0, end).split(' ')[1] ?? '/';
      buf = buf.slice(end + 4);
      const raw = RAW[path];
      if (raw) s.end(Buffer.from(raw, 'latin1'));
      else s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
    }
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
