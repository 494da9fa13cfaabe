// Config fields of the listeners that speak HTTP on loopback (http-proxy, metadata): they hand out
// tokens to whoever connects, so they may listen on loopback only; the server is src/proxy/loopback-http.ts.
import { z } from 'zod';
import { parseHostPort } from '../../lib/address.ts';
import { isLoopbackHost } from '../endpoints.ts';
import { duration } from '../fields.ts';

/** `headersTimeout:`: a client that has not sent a whole request head within it gets 408 and is cut. */
export const headersTimeoutField = duration(100).default(10_000);

/** `listen:` of a listener that must not be reachable from outside the VM. */
export const loopbackListen = z.string().superRefine((v, ctx) => {
  try {
    const { host } = parseHostPort(v, 'listen', true);
    if (!isLoopbackHost(host)) ctx.addIssue({ code: 'custom', message: `listen ${JSON.stringify(v)}: must be a loopback address (127.0.0.1:PORT or [::1]:PORT): it hands out tokens to whoever connects` });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
