// The hostile "program" of the listener fault-injection test (listeners.test.ts): the init runs
// it as `run:`, and it serves every upstream the init's listeners front or call. It behaves on
// ordinary requests (so the test can check that every listener still serves) and answers
// garbage when asked to, by the first line of a raw connection, the path of an HTTP request, or
// a word on its control port (for HTTP/2, whose requests it cannot tell apart otherwise).
// It prints nothing: its stderr is the init's, and the test reads that as the init's log.
// Usage: node hostile-program.mjs PORTS.json
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
// Node 24 runs the TypeScript helper as is (type stripping): one frame encoder for both sides.
import { h2frame, hpackLiteral } from './fuzz.ts';

const conf = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const sockets = new Set();

// A TLS socket cannot be reset (its handle is not a TCP one): it is destroyed instead.
const reset = (s) => (s.encrypted ? s.destroy() : s.resetAndDestroy());

function track(s) {
  sockets.add(s);
  s.on('error', () => s.destroy());
  s.on('close', () => sockets.delete(s));
  // A peer that stalls (or a stall we chose) is not held forever.
  s.setTimeout(60_000, () => s.destroy());
}

/** Reads until `\n` or `\r\n\r\n` (at most 256 KiB), then hands over what came; a peer that ends first is ended too. */
function head(s, marker, done) {
  let buf = Buffer.alloc(0);
  const onData = (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    const i = buf.indexOf(marker);
    if (i < 0 && buf.length < 256 * 1024) return;
    s.off('data', onData);
    s.off('end', onEnd);
    done(i < 0 ? buf : buf.subarray(0, i), i < 0 ? Buffer.alloc(0) : buf.subarray(i + marker.length));
  };
  const onEnd = () => s.end(buf);
  s.on('data', onData);
  s.once('end', onEnd);
}

// ---- raw TCP: psk, permissive tls and tunnel upstreams, the egress CONNECT target ----------
const RAW_FAULTS = {
  random: (s) => s.write(randomBytes(1 + Math.floor(Math.random() * 8192)), () => reset(s)),
  'random-end': (s) => s.end(randomBytes(1 + Math.floor(Math.random() * 8192))),
  rst: (s) => reset(s),
  stall: () => {},
  // Far more than any window: the init must apply backpressure, not buffer it.
  flood: (s) => {
    const chunk = randomBytes(64 * 1024);
    let left = 128;
    const more = () => {
      while (left > 0) {
        left--;
        if (!s.write(chunk)) return void s.once('drain', more);
      }
      s.end();
    };
    more();
  },
  'half-close': (s) => s.end('bye\n'),
};

function raw(s) {
  track(s);
  head(s, Buffer.from('\n'), (line, rest) => {
    const text = line.toString('latin1');
    if (text.startsWith('FAULT ')) {
      const f = RAW_FAULTS[text.slice(6).trim()];
      if (f) return f(s);
      return s.end('unknown fault\n');
    }
    if (text === 'PID') return s.write(`PID ${process.pid}\n`);
    s.write(Buffer.concat([line, Buffer.from('\n'), rest]));
    s.pipe(s);
  });
}

// ---- HTTP/1.1 (tls http: mode's upstream; over TLS: the egress proxy's destination) ---------
const ok = (body) => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
const bin = (s) => Buffer.from(s, 'latin1');
const utf8 = (s) => Buffer.from(s, 'utf8');
const HTTP_FAULTS = {
  'status-ctl': bin('HTTP/1.1 200 O\x01K\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'status-099': bin('HTTP/1.1 099 X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
  'status-1000': bin('HTTP/1.1 1000 Big\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
  'status-reason-utf8': Buffer.concat([bin('HTTP/1.1 200 '), utf8('日本🙂'), bin('\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')]),
  'status-reason-latin1': bin('HTTP/1.1 200 \xff\xfe\xe9\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'version-bad': bin('HTTP/9.9 200 OK\r\nContent-Length: 2\r\n\r\nok'),
  'header-nul': bin('HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'header-del': bin('HTTP/1.1 200 OK\r\nX-Bad: a\x7fb\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'header-ctl': bin('HTTP/1.1 200 OK\r\nX-Bad: a\x01\x1b[31mb\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'header-utf8': Buffer.concat([bin('HTTP/1.1 200 OK\r\nX-Bad: '), utf8('日本🙂ü'), bin('\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')]),
  'header-latin1': bin('HTTP/1.1 200 OK\r\nX-Bad: \xff\xfe\xe9\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'header-name-utf8': Buffer.concat([bin('HTTP/1.1 200 OK\r\n'), utf8('X-Bäd'), bin(': 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')]),
  'header-obs-fold': bin('HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'header-bare-lf': bin('HTTP/1.1 200 OK\nX-A: 1\nContent-Length: 2\n\nok'),
  'set-cookie-ctl': bin('HTTP/1.1 200 OK\r\nSet-Cookie: a=\x01\x02; Path=/\xff\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'),
  'location-utf8': Buffer.concat([bin('HTTP/1.1 302 Found\r\nLocation: http://'), utf8('日本'), bin('/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')]),
  'cl-conflict': bin('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok!'),
  'cl-te': bin('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n'),
  'cl-negative': bin('HTTP/1.1 200 OK\r\nContent-Length: -1\r\nConnection: close\r\n\r\nok'),
  'chunk-bad': bin('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nok\r\n0\r\n\r\n'),
  'trailer-bad': Buffer.concat([bin('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T, X-U\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\nX-T: a\x01b\r\nX-U: '), utf8('日本'), bin('\r\n\r\n')]),
  'early-hints': Buffer.concat([...Array.from({ length: 50 }, () => bin('HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\x7f\xff\r\n\r\n')), bin(ok('ok'))]),
  'upgrade-101': Buffer.concat([bin('HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n'), randomBytes(512)]),
  'huge-header': bin(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(200_000)}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`),
  'many-headers': bin(`HTTP/1.1 200 OK\r\n${Array.from({ length: 5000 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')}Content-Length: 2\r\nConnection: close\r\n\r\nok`),
  'cut-body': bin('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nonly ten b'),
  'http09': bin('hello, no status line at all\r\n'),
};
const HTTP_ACTIONS = {
  random: (s) => s.write(randomBytes(1 + Math.floor(Math.random() * 4096)), () => s.destroy()),
  'random-after-head': (s) => s.write(Buffer.concat([bin('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n'), randomBytes(3000)]), () => reset(s)),
  rst: (s) => reset(s),
  stall: () => {},
  trickle: (s) => {
    const bytes = bin(ok('trickled'));
    let i = 0;
    const timer = setInterval(() => {
      if (s.destroyed || i >= bytes.length) return void clearInterval(timer);
      s.write(bytes.subarray(i, ++i));
    }, 20);
  },
};

function http(s) {
  track(s);
  head(s, Buffer.from('\r\n\r\n'), (h) => {
    const text = h.toString('latin1');
    const [, target = ''] = /^\S+ (\S+)/.exec(text) ?? [];
    const path = target.replace(/^https?:\/\/[^/]*/, '');
    const fault = /^\/fault\/([\w-]+)/.exec(path)?.[1];
    if (fault && HTTP_FAULTS[fault]) return s.end(HTTP_FAULTS[fault]);
    if (fault && HTTP_ACTIONS[fault]) return HTTP_ACTIONS[fault](s);
    if (path.startsWith('/ok')) {
      // What the program was told: the request head, so the test can see the headers the init set.
      return s.end(ok(JSON.stringify({ pid: process.pid, head: text })));
    }
    s.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
}

// ---- HTTP/2 (a tunnel client's destination): raw frames, so it can send what node:http2 never would
let nextH2 = [];
const frame = h2frame;
const lit = hpackLiteral;
const status = (v) => Buffer.concat([Buffer.from([0x08, v.length]), Buffer.from(v, 'latin1')]); // literal, indexed name :status
const H200 = Buffer.from([0x88]);
const END_STREAM = 0x1, END_HEADERS = 0x4;
const H2_FAULTS = {
  'status-099': (s, id) => s.write(frame(1, END_HEADERS, id, status('099'))),
  'status-text': (s, id) => s.write(frame(1, END_HEADERS, id, status('2x0'))),
  'status-103-only': (s, id) => s.write(frame(1, END_HEADERS, id, status('103'))),
  'header-nul': (s, id) => s.write(frame(1, END_HEADERS, id, Buffer.concat([H200, lit('x-bad', Buffer.from('a\x00b', 'latin1'))]))),
  'header-utf8': (s, id) => s.write(frame(1, END_HEADERS, id, Buffer.concat([H200, lit('x-bad', Buffer.from('日本🙂', 'utf8'))]))),
  'header-upper': (s, id) => s.write(frame(1, END_HEADERS, id, Buffer.concat([H200, lit('X-Bad', Buffer.from('1'))]))),
  'hpack-garbage': (s, id) => s.write(frame(1, END_HEADERS, id, randomBytes(64))),
  'random': (s) => s.write(randomBytes(1 + Math.floor(Math.random() * 2048)), () => s.destroy()),
  'goaway-ctl': (s) => {
    const p = Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), Buffer.from('\x00\x1b[31m', 'latin1'), Buffer.from('日本', 'utf8')]);
    s.write(frame(7, 0, 0, p));
  },
  'rst-odd-code': (s, id) => s.write(frame(3, 0, id, Buffer.from([0xde, 0xad, 0xbe, 0xef]))),
  'window-overflow': (s) => {
    const inc = Buffer.from([0x7f, 0xff, 0xff, 0xff]);
    s.write(Buffer.concat([frame(8, 0, 0, inc), frame(8, 0, 0, inc)]));
  },
  'settings-bad': (s) => s.write(frame(4, 0, 0, Buffer.from([0, 4, 0xff, 0xff, 0xff, 0xff]))),
  'ping-flood': (s) => s.write(Buffer.concat(Array.from({ length: 5000 }, () => frame(6, 0, 0, randomBytes(8))))),
  'settings-flood': (s) => s.write(Buffer.concat(Array.from({ length: 5000 }, () => frame(4, 0, 0)))),
  'push-promise': (s, id) => s.write(frame(5, END_HEADERS, id, Buffer.concat([Buffer.from([0, 0, 0, 2]), H200]))),
  'data-then-rst': (s, id) => s.write(Buffer.concat([frame(1, END_HEADERS, id, H200), frame(0, 0, id, randomBytes(1000)), frame(3, 0, id, Buffer.from([0, 0, 0, 2]))])),
  'huge-frame': (s) => s.write(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]), randomBytes(100)])),
  stall: () => {},
  destroy: (s) => s.destroy(),
};

function h2(s) {
  track(s);
  const okStreams = new Set();
  let buf = Buffer.alloc(0);
  let preface = false;
  s.write(frame(4, 0, 0));
  s.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    if (!preface) {
      if (buf.length < 24) return;
      buf = buf.subarray(24);
      preface = true;
    }
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) return;
      const [type, flags] = [buf[3], buf[4]];
      const id = buf.readUInt32BE(5) & 0x7fffffff;
      const payload = buf.subarray(9, 9 + len);
      buf = buf.subarray(9 + len);
      if (s.destroyed) return;
      if (type === 4 && !(flags & 1)) s.write(frame(4, 1, 0));
      else if (type === 6 && !(flags & 1)) s.write(frame(6, 1, 0, payload));
      else if (type === 1) {
        const kind = nextH2.shift() ?? 'ok';
        if (kind === 'ok') {
          okStreams.add(id);
          s.write(frame(1, END_HEADERS, id, H200));
        } else H2_FAULTS[kind]?.(s, id);
        if (flags & END_STREAM && okStreams.has(id)) s.write(frame(0, END_STREAM, id));
      } else if (type === 0 && okStreams.has(id)) {
        // Echo, and give the window back (the tunnel's data is small here).
        s.write(frame(0, flags & END_STREAM, id, payload));
        if (len > 0) {
          const inc = Buffer.alloc(4);
          inc.writeUInt32BE(len);
          s.write(Buffer.concat([frame(8, 0, 0, inc), frame(8, 0, id, inc)]));
        }
      }
    }
  });
}

// ---- the control port: the test says what the next HTTP/2 stream gets ----------------------
function control(s) {
  track(s);
  head(s, Buffer.from('\n'), (line) => {
    const [what, kind] = line.toString('latin1').trim().split(' ');
    if (what === 'h2' && (kind === 'ok' || H2_FAULTS[kind])) {
      nextH2.push(kind);
      return s.end('ok\n');
    }
    if (what === 'h2-clear') {
      nextH2 = [];
      return s.end('ok\n');
    }
    s.end(`unknown ${what} ${kind}\n`);
  });
}

const servers = [
  ...conf.raw.map((port) => [createServer({ allowHalfOpen: true }, raw), port]),
  [createServer(http), conf.http],
  [createTlsServer({ cert: readFileSync(conf.cert), key: readFileSync(conf.key) }, http), conf.https],
  [createServer(h2), conf.h2],
  [createServer(control), conf.control],
];
for (const [server, port] of servers) {
  server.on('tlsClientError', () => {});
  server.on('error', (err) => {
    process.stderr.write(`hostile program: cannot listen on ${port}: ${err.message}\n`);
    process.exit(3);
  });
  server.listen(port, '127.0.0.1');
}
// A bug of this program must not pass for a failure of the init: say so (a non-JSON line the test reports) and go on.
process.on('uncaughtException', (err) => process.stderr.write(`hostile program bug: ${err.stack}\n`));
process.on('SIGTERM', () => {
  for (const [server] of servers) server.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
});
