// The reference demo's TCP server: greets every client, echoes what it sends, and ends its side
// once the client has ended its own (half-close). It knows nothing of TLS, HTTP/2 or tunnels.
// Usage: node congrats-server.mjs HOST:PORT
import { createServer } from 'node:net';

const [host, port] = (process.argv[2] ?? '127.0.0.1:7777').split(/:(?=\d+$)/);
const server = createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('error', () => {});
  socket.write('Congrats! You have connected through the tunnel.\n');
  socket.pipe(socket);
});
server.listen(Number(port), host, () => console.log(`congrats server listening on ${host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
