// The egress floor (issue 19): what Node itself costs to forward one kept-alive HTTP request to
// https. A minimal forward proxy, no engine: an http server taking absolute-form requests, each
// sent on over https with a keep-alive Agent (one destination, its CA), the answer piped back.
// tee-init's http-proxy listener (routes, token, header hygiene, bounds) is measured against it.
// Usage: node bench/floor-http.ts --listen PORT --connect PORT --ca FILE --servername HOST
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Agent, request } from 'node:https';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({ options: { listen: { type: 'string' }, connect: { type: 'string' }, ca: { type: 'string' }, servername: { type: 'string' } } });
const agent = new Agent({ keepAlive: true, ca: readFileSync(a.ca!) });
const server = createServer((req, res) => {
  const url = new URL(req.url!);
  const up = request({ host: '127.0.0.1', port: Number(a.connect), servername: a.servername, method: req.method, path: `${url.pathname}${url.search}`, headers: { ...req.headers, host: url.host }, agent }, (upRes) => {
    res.writeHead(upRes.statusCode!, upRes.headers);
    upRes.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(a.listen), '127.0.0.1');
// A clean exit on SIGTERM, so that `node --cpu-prof bench/floor-http.ts` writes its profile.
process.on('SIGTERM', () => process.exit(0));
