// The barrage: for each listener, faults from the client side and from its upstream (the program,
// or what it calls), as families of variants. A variant returns a problem (a string) when what
// the client saw is wrong (a malformed status line passed through, a bound not kept); anything
// else it may throw (resets, refusals) is an ordinary outcome of a hostile exchange.
import { connect as h2connect } from 'node:http2';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { EmulatedWorld } from '../fakes/world.ts';
import { closedBy, collect, dial, ENDINGS, h2Attacks, H2_PREFACE, h2frame, malformedRequests, type Rng, sendRaw, trickle } from './fuzz.ts';
import {
  type Certs, h2Next, HOSTILE_HOST, httpsGet, LIMITS, type ListenerName, mtlsOptions, type Ports, PSK_KEY, pskOptions, tunnelStream,
} from './rig.ts';

export interface Ctx {
  ports: Ports;
  certs: Certs;
  world: EmulatedWorld;
  rng: Rng;
  scale: number;
  /** How long a client waits for an answer (or a close) before it gives up: FAULT_WAIT_MS. */
  waitMs: number;
  hello: { tls: Buffer; psk: Buffer };
  /** One normal request through the case's listener (rejects saying what was wrong). */
  probe(): Promise<void>;
  /** Runs one variant, then checks the init; a returned string is a problem the client saw. */
  variant(name: string, fn: () => Promise<string | undefined>): Promise<void>;
}

export interface Case {
  listener: ListenerName;
  direction: 'client' | 'upstream';
  fault: string;
  /** Probe the listener after every variant (not only after the family): names the variant that broke it. */
  probeEach?: boolean;
  run(ctx: Ctx): Promise<void>;
}

const TLS_LISTENERS = ['psk', 'mtls-http', 'mtls-any'] as const;
const echoed = (text: string) => (got: Buffer) => got.toString('latin1').includes(text);
const n = (ctx: Ctx, k: number) => Math.max(1, Math.round(k * ctx.scale));
const port = (ctx: Ctx, l: ListenerName) => ctx.ports.listeners[l];

/** What a client got back must look like HTTP: a status line with a 3-digit code and no control bytes anywhere in the head. */
export function headProblem(got: Buffer): string | undefined {
  if (got.length === 0) return undefined; // closed without an answer: a legitimate end
  const end = got.indexOf('\r\n\r\n');
  const head = got.subarray(0, end < 0 ? Math.min(got.length, 8192) : end).toString('latin1');
  const [status = '', ...headers] = head.split('\r\n');
  if (!/^HTTP\/1\.[01] [1-5]\d\d( [\t\x20-\x7e\x80-\xff]*)?$/.test(status)) return `the client got a malformed status line ${JSON.stringify(status.slice(0, 120))}`;
  const code = Number(status.slice(9, 12));
  if (code < 200 && code !== 100 && code !== 101 && code !== 103) return `the client got status ${code}`;
  const bad = headers.find((h) => /[\x00-\x08\x0a-\x1f\x7f]/.test(h));
  if (bad) return `the client got a header with control bytes ${JSON.stringify(bad.slice(0, 120))}`;
  return undefined;
}

/** Sends `data` in one write on a TLS (or PSK) connection and collects the answer. */
async function overTls(ctx: Ctx, p: number, options: object, data: Buffer, waitMs = ctx.waitMs, until?: (got: Buffer) => boolean): Promise<Buffer> {
  const s = tlsConnect({ host: '127.0.0.1', port: p, ...options });
  s.on('error', () => {});
  const got = collect(s as unknown as Socket, waitMs, until);
  s.once('secureConnect', () => s.write(data));
  return got;
}

// ---- from the client ---------------------------------------------------------------------------

const randomBytes: Case[] = (['psk', 'mtls-http', 'mtls-any', 'tunnel-in', 'tunnel-out', 'tunnel-hostile', 'egress', 'metadata'] as const).map((l) => ({
  listener: l, direction: 'client', fault: 'random bytes',
  async run(ctx) {
    for (let i = 0; i < n(ctx, 6); i++) {
      const data = ctx.rng.bytes(ctx.rng.int(1, 8192));
      await ctx.variant(`#${i} (${data.length} bytes, first ${data.subarray(0, 8).toString('hex')})`, async () => void (await sendRaw(port(ctx, l), data, ctx.rng.pick(ENDINGS), ctx.waitMs)));
    }
  },
}));

function halfHandshakes(l: (typeof TLS_LISTENERS)[number]): Case {
  return {
    listener: l, direction: 'client', fault: 'half TLS handshakes',
    async run(ctx) {
      const hello = l === 'psk' ? ctx.hello.psk : ctx.hello.tls;
      const p = port(ctx, l);
      for (let i = 0; i < n(ctx, 3); i++) {
        const cut = ctx.rng.int(1, hello.length - 1);
        await ctx.variant(`ClientHello cut at ${cut}/${hello.length}, then end`, async () => {
          const s = await dial(p);
          const got = collect(s, ctx.waitMs);
          s.end(hello.subarray(0, cut));
          await got;
        });
      }
      await ctx.variant('ClientHello, then reset', async () => {
        const s = await dial(p);
        s.write(hello, () => s.resetAndDestroy());
        await closedBy(s, ctx.waitMs);
      });
      await ctx.variant('ClientHello, then random bytes', async () => void (await sendRaw(p, Buffer.concat([hello, ctx.rng.bytes(ctx.rng.int(1, 2048))]), ctx.rng.pick(ENDINGS), ctx.waitMs)));
      await ctx.variant('ClientHello twice', async () => void (await sendRaw(p, Buffer.concat([hello, hello]), ctx.rng.pick(ENDINGS), ctx.waitMs)));
      await ctx.variant('ClientHello, leave after the ServerHello', async () => {
        const s = await dial(p);
        s.write(hello);
        await new Promise<void>((resolve) => {
          s.once('data', () => resolve());
          s.once('close', () => resolve());
        });
        s.destroy();
      });
      await ctx.variant('record header claiming 64 KiB', async () => void (await sendRaw(p, Buffer.from('1603010fff010000', 'hex'), ctx.rng.pick(ENDINGS), ctx.waitMs)));
      await ctx.variant('fatal alert first', async () => void (await sendRaw(p, Buffer.from('15030300020228', 'hex'), ctx.rng.pick(ENDINGS), ctx.waitMs)));
      await ctx.variant('SSLv2 hello', async () => void (await sendRaw(p, Buffer.concat([Buffer.from('802e0103010015000000100700c0', 'hex'), ctx.rng.bytes(40)]), ctx.rng.pick(ENDINGS), ctx.waitMs)));
      if (l === 'psk') {
        for (const identity of ['Ünïcødé 🙂', 'ctl\x01\x1b[31m\x7f', 'x'.repeat(1024), '']) {
          await ctx.variant(`PSK identity ${JSON.stringify(identity.slice(0, 20))}${identity.length > 20 ? '…' : ''}`, async () => {
            await overTls(ctx, p, { ...pskOptions(), pskCallback: () => ({ psk: PSK_KEY, identity }) }, Buffer.from('PING\n'));
          });
        }
        await ctx.variant('wrong key', async () => void (await overTls(ctx, p, pskOptions(Buffer.alloc(32, 7)), Buffer.from('PING\n'))));
      }
    },
  };
}

/** Hostile certificates against the mutual-TLS listeners: the subject and SANs go to logs and XFCC. */
const weirdCertificates: Case[] = [
  {
    listener: 'mtls-http', direction: 'client', fault: 'client certificates with UTF-8/control-char subjects and SANs',
    async run(ctx) {
      for (const [name, pair] of Object.entries(ctx.certs.weird)) {
        await ctx.variant(`${name} (${pair.allowed ? 'in' : 'outside'} the allow-list)`, async () => {
          let r;
          try {
            r = await httpsGet(port(ctx, 'mtls-http'), '/ok', mtlsOptions(ctx.certs, pair));
          } catch (err) {
            return pair.allowed ? `an allowed client got no answer: ${(err as Error).message}` : undefined;
          }
          // A refused client is told why by the listener itself: 403 with the reason, never the program.
          if (!pair.allowed) return r.status === 403 && /^client certificate refused: /.test(r.body) ? undefined : `a client outside the allow-list got through (${r.status})`;
          if (r.status !== 200) return `an allowed client got ${r.status}: ${r.body.slice(0, 200)}`;
          const head = (JSON.parse(r.body) as { head: string }).head;
          const xfcc = /^x-forwarded-client-cert: (.*)$/im.exec(head)?.[1];
          if (xfcc === undefined) return 'the program got no X-Forwarded-Client-Cert';
          if (/[^\x20-\x7e]/.test(xfcc)) return `the program got an XFCC with raw non-ASCII/control bytes: ${JSON.stringify(xfcc.slice(0, 200))}`;
          if (/^x-evil|^x-injected/im.test(head)) return `a SAN or subject injected a header: ${JSON.stringify(head)}`;
        });
      }
    },
  },
  {
    listener: 'mtls-any', direction: 'client', fault: 'client certificates with UTF-8/control-char subjects and SANs',
    async run(ctx) {
      for (const [name, pair] of Object.entries(ctx.certs.weird)) {
        await ctx.variant(name, async () => {
          const got = await overTls(ctx, port(ctx, 'mtls-any'), mtlsOptions(ctx.certs, pair), Buffer.from('PING weird\n'), ctx.waitMs, echoed('PING weird'));
          if (!got.toString('latin1').includes('PING weird')) return `a client with a CA-signed certificate got no echo (${got.length} bytes)`;
        });
      }
    },
  },
  {
    listener: 'tunnel-in', direction: 'client', fault: 'inner client certificates with UTF-8/control-char subjects and SANs',
    async run(ctx) {
      for (const [name, pair] of Object.entries(ctx.certs.weird)) {
        await ctx.variant(name, async () => {
          const t = await tunnelStream(port(ctx, 'tunnel-in'), ctx.certs, pair).catch((err: Error) => err);
          if (t instanceof Error) return `the tunnel refused a CA-signed client: ${t.message}`;
          const got = collect(t.inner as unknown as Socket, ctx.waitMs, echoed('PING weird'));
          t.inner.write('PING weird\n');
          const data = await got;
          t.close();
          if (!data.toString('latin1').includes('PING weird')) return `no echo through the tunnel (${data.length} bytes)`;
        });
      }
    },
  },
];

/** Trickling: a client that sends a byte at a time keeps its slot at most handshakeTimeout (TLS), and a slow but whole request is served. */
const trickled: Case[] = [
  ...(['egress', 'metadata'] as const).map((l): Case => ({
    listener: l, direction: 'client', fault: 'trickled request headers',
    async run(ctx) {
      const req = l === 'egress'
        ? `GET http://${HOSTILE_HOST}/ok HTTP/1.1\r\nHost: ${HOSTILE_HOST}\r\nConnection: close\r\n\r\n`
        : 'GET /computeMetadata/v1/project/project-id HTTP/1.1\r\nHost: metadata\r\nMetadata-Flavor: Google\r\nConnection: close\r\n\r\n';
      await ctx.variant(`a byte every 10 ms (${req.length} bytes)`, async () => {
        const got = await trickle(port(ctx, l), Buffer.from(req), 10, req.length * 10 + 10_000);
        if (!/^HTTP\/1\.1 200 /.test(got.toString('latin1'))) return `a slow but whole request got ${JSON.stringify(got.toString('latin1').slice(0, 120))}`;
      });
    },
  })),
  {
    listener: 'mtls-http', direction: 'client', fault: 'trickled request headers inside TLS',
    async run(ctx) {
      const req = Buffer.from('GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      await ctx.variant(`a byte every 10 ms (${req.length} bytes)`, async () => {
        const s = tlsConnect({ host: '127.0.0.1', port: port(ctx, 'mtls-http'), ...mtlsOptions(ctx.certs) });
        s.on('error', () => {});
        const got = collect(s as unknown as Socket, req.length * 10 + 10_000);
        s.once('secureConnect', async () => {
          for (let i = 0; i < req.length && !s.destroyed; i++) {
            s.write(req.subarray(i, i + 1));
            await new Promise((r) => setTimeout(r, 10));
          }
        });
        const text = (await got).toString('latin1');
        if (!/^HTTP\/1\.1 200 /.test(text)) return `a slow but whole request got ${JSON.stringify(text.slice(0, 120))}`;
      });
    },
  },
  {
    listener: 'mtls-any', direction: 'client', fault: 'trickled plaintext on the permissive port',
    async run(ctx) {
      await ctx.variant('a byte every 50 ms', async () => {
        const got = await trickle(port(ctx, 'mtls-any'), Buffer.from('PING trickle\n'), 50, 5000, echoed('PING trickle'));
        if (!got.toString().includes('PING trickle')) return `no echo for a trickling plaintext client (${JSON.stringify(got.toString('latin1').slice(0, 80))})`;
      });
    },
  },
  {
    listener: 'tunnel-in', direction: 'client', fault: 'trickled HTTP/2 preface and request',
    async run(ctx) {
      const data = Buffer.concat([H2_PREFACE, Buffer.from('000000040000000000', 'hex')]);
      await ctx.variant(`a byte every 20 ms (${data.length} bytes), then held`, async () => void (await trickle(port(ctx, 'tunnel-in'), data, 20, data.length * 20 + ctx.waitMs)));
    },
  },
];

/** Silent and trickling clients on the TLS listeners: each is cut within handshakeTimeout of its accept, however it trickles. */
const stalledTls: Case[] = TLS_LISTENERS.map((l) => ({
  listener: l, direction: 'client', fault: 'stalled and trickling clients (handshakeTimeout)',
  async run(ctx) {
    const hello = l === 'psk' ? ctx.hello.psk : ctx.hello.tls;
    const bound = LIMITS.handshakeTimeoutMs + 5000;
    const silent = async () => closedBy(await dial(port(ctx, l)), bound);
    const trickling = async () => {
      const s = await dial(port(ctx, l));
      let i = 0;
      const timer = setInterval(() => (i < hello.length - 1 && !s.destroyed ? s.write(hello.subarray(i, ++i)) : clearInterval(timer)), 100);
      const closed = await closedBy(s, bound);
      clearInterval(timer);
      return closed;
    };
    await ctx.variant(`${n(ctx, 3)} silent and ${n(ctx, 3)} trickling (a ClientHello byte every 100 ms) at once`, async () => {
      const [a, b] = await Promise.all([
        Promise.all(Array.from({ length: n(ctx, 3) }, silent)),
        Promise.all(Array.from({ length: n(ctx, 3) }, trickling)),
      ]);
      const held = [a.filter((c) => !c).length, b.filter((c) => !c).length];
      if (held[0] || held[1]) return `${held[0]} silent and ${held[1]} trickling client(s) still held their slot ${bound} ms after accept (handshakeTimeout ${LIMITS.handshakeTimeoutMs} ms)`;
    });
  },
}));

/** Silent clients on the other listeners: held through the probe (the listener must serve beside them), then dropped. */
const stalled: Case[] = (['tunnel-in', 'tunnel-out', 'egress', 'metadata'] as const).map((l) => ({
  listener: l, direction: 'client', fault: 'stalled clients (connect, send nothing)',
  async run(ctx) {
    await ctx.variant(`${n(ctx, 4)} silent connections, held while the listener serves`, async () => {
      const socks = await Promise.all(Array.from({ length: n(ctx, 4) }, () => dial(port(ctx, l))));
      try {
        await ctx.probe();
      } catch (err) {
        return `the listener does not serve beside ${socks.length} silent connections: ${(err as Error).message}`;
      } finally {
        for (const s of socks) s.destroy();
      }
    });
  },
}));

/**
 * The tunnel server's slots: HTTP/2 connections that open and then say nothing (no preface, or a
 * preface and no stream) must be cut within a bound, or maxConnections of them lock it out.
 */
const tunnelLockout: Case = {
  listener: 'tunnel-in', direction: 'client', fault: 'silent HTTP/2 connections filling maxConnections',
  async run(ctx) {
    const bound = LIMITS.tunnelIdleMs + 3000;
    await ctx.variant(`${LIMITS.tunnelConnections} connections: half with nothing, half with the preface and SETTINGS only`, async () => {
      const socks = await Promise.all(Array.from({ length: LIMITS.tunnelConnections }, () => dial(port(ctx, 'tunnel-in'))));
      socks.forEach((s, i) => i % 2 && s.write(Buffer.concat([H2_PREFACE, h2frame(4, 0, 0)])));
      const meanwhile = await Promise.race([
        ctx.probe().then(() => 'served', (err: Error) => `refused (${err.message})`),
        new Promise<string>((r) => setTimeout(() => r('not answered within 2 s'), 2000).unref()),
      ]);
      const cut = await Promise.all(socks.map((s) => closedBy(s, bound)));
      const held = cut.filter((c) => !c).length;
      if (held) return `${held} of ${socks.length} silent connections still held their slot ${bound} ms after accept (idleTimeout ${LIMITS.tunnelIdleMs} ms); meanwhile a normal tunnel was ${meanwhile}`;
    });
  },
};

/**
 * maxConnections + extra at once: the extra ones are refused at accept, and the port serves again
 * once they go. The slot holders are ones the init has no reason to cut within the window:
 * finished TLS handshakes, unfinished ones (cut at handshakeTimeout, after the window), or a
 * partial request or preface (cut after headersTimeout, 10 s and more).
 */
const floods: Case[] = (['psk', 'mtls-http', 'mtls-any', 'tunnel-in', 'tunnel-out', 'egress', 'metadata'] as const).map((l) => ({
  listener: l, direction: 'client', fault: 'flood at maxConnections',
  async run(ctx) {
    const max = l === 'tunnel-in' ? LIMITS.tunnelConnections : l === 'metadata' ? LIMITS.metadataConnections : LIMITS.maxConnections;
    const extra = 8;
    const tls = l === 'psk' || l === 'mtls-http' || l === 'mtls-any';
    const raw = (): Promise<Socket | undefined> =>
      dial(port(ctx, l)).then((s) => (s.write(l === 'tunnel-in' ? H2_PREFACE.subarray(0, 4) : l === 'egress' || l === 'metadata' ? 'GE' : '\x16'), s), () => undefined);
    const handshaken = (): Promise<Socket | undefined> => {
      const s = tlsConnect({ host: '127.0.0.1', port: port(ctx, l), ...(l === 'psk' ? pskOptions() : mtlsOptions(ctx.certs)) });
      s.on('error', () => {});
      return Promise.resolve(s as unknown as Socket);
    };
    const kinds: [string, () => Promise<Socket | undefined>, number][] = tls
      ? [['unfinished handshakes', raw, LIMITS.handshakeTimeoutMs / 2], ['finished handshakes', handshaken, 2000]]
      : [['connections', raw, 2000]];
    for (const [kind, open, window] of kinds) {
      await ctx.variant(`${max} + ${extra} ${kind} held at once`, async () => {
        const socks = await Promise.all(Array.from({ length: max + extra }, open));
        // Refusals happen at accept: what closes within the window was refused.
        const closed = await Promise.all(socks.map((s) => (s ? closedBy(s, window) : Promise.resolve(true))));
        const refused = closed.filter(Boolean).length;
        const problems: string[] = [];
        if (refused < extra) problems.push(`only ${refused} of the ${extra} connections beyond maxConnections ${max} were refused within ${window} ms`);
        // The init sees the flood's closes a moment later: a lock-out is a listener that never
        // serves again. 15 s: on a machine whose cores are both busy, one probe alone can take 5.
        let last: Error | undefined;
        for (const until = Date.now() + 15_000; ;) {
          last = await ctx.probe().then(() => undefined, (err: Error) => err);
          if (!last || Date.now() > until) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        if (last) problems.push(`the listener still refuses a normal request 15 s after the flood left: ${last.message}`);
        return problems.join('; ') || undefined;
      });
    }
  },
}));

function malformedHttp(l: 'mtls-http' | 'egress' | 'metadata'): Case {
  return {
    listener: l, direction: 'client', fault: 'malformed HTTP requests',
    async run(ctx) {
      // Connection: close, so that a request that is served does not hold the client for the wait.
      const [target, host, extra] = l === 'egress' ? [`http://${HOSTILE_HOST}/ok`, HOSTILE_HOST, 'Connection: close\r\n']
        : l === 'metadata' ? ['/computeMetadata/v1/project/project-id', 'metadata.google.internal', 'Metadata-Flavor: Google\r\nConnection: close\r\n']
        : ['/ok', 'localhost', 'Connection: close\r\n'];
      for (const [name, data] of Object.entries(malformedRequests(target, host, extra, ctx.rng))) {
        await ctx.variant(name, async () => {
          const got = l === 'mtls-http'
            ? await overTls(ctx, port(ctx, l), mtlsOptions(ctx.certs), data)
            : await sendRaw(port(ctx, l), data, 'wait', ctx.waitMs);
          return headProblem(got);
        });
      }
    },
  };
}

const h2Floods: Case = {
  listener: 'tunnel-in', direction: 'client', fault: 'HTTP/2 frame floods and malformed frames',
  async run(ctx) {
    for (const [name, data] of Object.entries(h2Attacks(`127.0.0.1:${port(ctx, 'tunnel-in')}`, ctx.rng, ctx.scale))) {
      await ctx.variant(`${name} (${data.length} bytes)`, async () => {
        const s = await dial(port(ctx, 'tunnel-in'));
        const got = collect(s, ctx.waitMs);
        s.write(Buffer.concat([H2_PREFACE, data]));
        await got;
      });
    }
    await ctx.variant('HTTP/1.1 on the h2c port', async () => void (await sendRaw(port(ctx, 'tunnel-in'), Buffer.from('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'), ctx.rng.pick(ENDINGS), ctx.waitMs)));
    await ctx.variant('half an inner TLS handshake in a tunnel', async () => {
      const session = h2connect(`http://127.0.0.1:${port(ctx, 'tunnel-in')}`);
      session.on('error', () => {});
      const stream = session.request({ ':method': 'POST', ':path': '/' }, { endStream: false });
      stream.on('error', () => {});
      // Once the cut ClientHello is handed to the connection, the client goes.
      await new Promise((r) => stream.write(ctx.hello.tls.subarray(0, ctx.rng.int(1, ctx.hello.tls.length - 1)), r));
      session.destroy();
    });
  },
};

// ---- from the upstream (the program, or what the listener calls) -------------------------------

const RAW_FAULTS = ['random', 'random-end', 'rst', 'stall', 'flood', 'half-close'];

const rawUpstream: Case[] = [
  { listener: 'psk', via: (ctx: Ctx, data: Buffer) => overTls(ctx, port(ctx, 'psk'), pskOptions(), data) },
  { listener: 'mtls-any', via: (ctx: Ctx, data: Buffer) => overTls(ctx, port(ctx, 'mtls-any'), mtlsOptions(ctx.certs), data) },
  { listener: 'tunnel-out', via: (ctx: Ctx, data: Buffer) => sendRaw(port(ctx, 'tunnel-out'), data, 'wait', ctx.waitMs) },
].map(({ listener, via }) => ({
  listener: listener as ListenerName, direction: 'upstream' as const, fault: 'the program answers garbage, resets, stalls, floods', probeEach: true,
  async run(ctx: Ctx) {
    for (const f of RAW_FAULTS) await ctx.variant(f, async () => void (await via(ctx, Buffer.from(`FAULT ${f}\n`))));
  },
}));

const HTTP_FAULTS = [
  'status-ctl', 'status-099', 'status-1000', 'status-reason-utf8', 'status-reason-latin1', 'version-bad', 'header-nul', 'header-del', 'header-ctl',
  'header-utf8', 'header-latin1', 'header-name-utf8', 'header-obs-fold', 'header-bare-lf', 'set-cookie-ctl', 'location-utf8', 'cl-conflict', 'cl-te',
  'cl-negative', 'chunk-bad', 'trailer-bad', 'early-hints', 'upgrade-101', 'huge-header', 'many-headers', 'cut-body', 'http09', 'random',
  'random-after-head', 'rst', 'stall', 'trickle',
];

const httpUpstream: Case[] = (['mtls-http', 'egress'] as const).map((l) => ({
  listener: l, direction: 'upstream', fault: 'malformed HTTP responses (status lines, headers, framing), resets, stalls', probeEach: true,
  async run(ctx) {
    for (const f of HTTP_FAULTS) {
      await ctx.variant(f, async () => {
        const got = l === 'egress'
          ? await sendRaw(port(ctx, l), Buffer.from(`GET http://${HOSTILE_HOST}/fault/${f} HTTP/1.1\r\nHost: ${HOSTILE_HOST}\r\nConnection: close\r\n\r\n`), 'wait', ctx.waitMs + 2000)
          : await overTls(ctx, port(ctx, l), mtlsOptions(ctx.certs), Buffer.from(`GET /fault/${f} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`), ctx.waitMs + 2000);
        return headProblem(got);
      });
    }
  },
}));

const egressConnect: Case = {
  listener: 'egress', direction: 'upstream', fault: 'a CONNECT tunnel whose destination answers garbage', probeEach: true,
  async run(ctx) {
    for (const f of RAW_FAULTS) {
      await ctx.variant(f, async () => {
        const target = `127.0.0.1:${ctx.ports.raw[3]}`;
        const s = await dial(port(ctx, 'egress'));
        const got = collect(s, ctx.waitMs);
        s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
        s.once('data', () => s.write(`FAULT ${f}\n`));
        const text = (await got).toString('latin1');
        if (!text.startsWith('HTTP/1.1 200')) return `CONNECT to an allowed tunnel got ${JSON.stringify(text.slice(0, 80))}`;
      });
    }
  },
};

const H2_FAULTS = [
  'status-099', 'status-text', 'status-103-only', 'header-nul', 'header-utf8', 'header-upper', 'hpack-garbage', 'random', 'goaway-ctl', 'rst-odd-code',
  'window-overflow', 'settings-bad', 'ping-flood', 'settings-flood', 'push-promise', 'data-then-rst', 'huge-frame', 'stall', 'destroy',
];

const h2Upstream: Case = {
  listener: 'tunnel-hostile', direction: 'upstream', fault: 'the HTTP/2 server answers malformed frames, floods, stalls', probeEach: true,
  async run(ctx) {
    for (const f of H2_FAULTS) {
      await ctx.variant(f, async () => {
        await h2Next(ctx.ports, f);
        await sendRaw(port(ctx, 'tunnel-hostile'), Buffer.from('PING hostile\n'), 'wait', ctx.waitMs);
        await h2Next(ctx.ports, 'clear');
      });
    }
  },
};

/** The metadata server's upstream is Google (the fakes): errors with hostile bodies, garbage tokens, drops. */
const metadataUpstream: Case = {
  listener: 'metadata', direction: 'upstream', fault: 'the token service answers garbage, errors, drops', probeEach: true,
  async run(ctx) {
    const gcp = ctx.world.gcp;
    const faults: Record<string, () => void> = {
      'iam 500 with a control-char body': () => gcp.fault('iam', { status: 500, body: '\x00\x1b[31m日本 error' }),
      'iam 200 with garbage JSON': () => gcp.fault('iam', { status: 200, body: '{"accessToken":"\\u0000日本\\r\\nX: 1","expireTime":"yesterday"}' }),
      'iam 200 with a non-JSON body': () => gcp.fault('iam', { status: 200, body: '<html>\x01' }),
      'iam drops the connection': () => gcp.fault('iam', { dropConnection: true }),
      'sts 400 with a hostile body': () => gcp.fault('sts', { status: 400, body: { error: 'invalid_grant', error_description: '\r\nX-Evil: 1 日本\x00' } }),
    };
    for (const [name, set] of Object.entries(faults)) {
      await ctx.variant(name, async () => {
        set();
        try {
          const scope = `https://www.googleapis.com/auth/fault-${ctx.rng.int(0, 1e9)}`;
          const aud = `https://fault-${ctx.rng.int(0, 1e9)}.test`;
          const paths = [`/computeMetadata/v1/instance/service-accounts/default/token?scopes=${scope}`, `/computeMetadata/v1/instance/service-accounts/default/identity?audience=${aud}`];
          const answers = await Promise.all(paths.map((path) => sendRaw(port(ctx, 'metadata'), Buffer.from(`GET ${path} HTTP/1.1\r\nHost: metadata\r\nMetadata-Flavor: Google\r\nConnection: close\r\n\r\n`), 'wait', 8000)));
          for (const got of answers) {
            const problem = headProblem(got);
            if (problem) return problem;
            const body = got.toString('latin1');
            if (/^HTTP\/1\.1 200/.test(body) && /[\x00-\x08\x0b\x0c\x0e-\x1f]/.test(body.slice(body.indexOf('\r\n\r\n')))) return `a 200 carried a raw control byte from the token service: ${JSON.stringify(body.slice(0, 300))}`;
          }
        } finally {
          gcp.clearFaults();
        }
      });
    }
  },
};

export const CASES: Case[] = [
  ...randomBytes,
  ...TLS_LISTENERS.map(halfHandshakes),
  ...weirdCertificates,
  ...trickled,
  ...stalledTls,
  ...stalled,
  ...floods,
  tunnelLockout,
  malformedHttp('mtls-http'),
  malformedHttp('egress'),
  malformedHttp('metadata'),
  h2Floods,
  ...rawUpstream,
  ...httpUpstream,
  egressConnect,
  h2Upstream,
  metadataUpstream,
];
