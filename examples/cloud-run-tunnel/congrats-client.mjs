// The reference demo's TCP client: connects, sends one line, half-closes, prints what comes
// back, and exits 0 if it was congratulated. While the tunnel comes up (the local listener not
// yet bound, or the far side not yet answering: an empty reply) it tries again, for ~10 s.
// Usage: node congrats-client.mjs HOST:PORT [MESSAGE]
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const [host, port] = (process.argv[2] ?? '127.0.0.1:7777').split(/:(?=\d+$)/);
const message = process.argv[3] ?? 'hello from the congrats client';

function once() {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port), allowHalfOpen: true });
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.end(`${message}\n`));
    socket.on('data', (chunk) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

for (let attempt = 1; ; attempt++) {
  try {
    const answer = await once();
    if (answer === '' && attempt < 100) {
      await sleep(100);
      continue;
    }
    process.stdout.write(answer);
    process.exit(answer.startsWith('Congrats!') ? 0 : 1);
  } catch (err) {
    if (err.code !== 'ECONNREFUSED' || attempt >= 100) {
      console.error(`congrats client: ${err.code ?? err.message}`);
      process.exit(1);
    }
    await sleep(100);
  }
}
