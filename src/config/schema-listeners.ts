// `listeners:` (docs/listeners.md): a map of named in-process listeners, each checked by the schema of
// its type from the listener table (./listeners/), plus the `psk:` shorthand for one listener named psk.
import { z } from 'zod';
import { parseHostPort } from '../lib/address.ts';
import { isLoopbackHost } from './endpoints.ts';
import { name } from './fields.ts';
import { type AnyListenerConfigType, LISTENER_CONFIGS } from './listeners/index.ts';
import { defaultMessage } from './messages.ts';

export interface ListenerConfig {
  type: string;
  [field: string]: unknown;
}

// Dispatch on `type` by hand rather than with a zod union: a union reports every member's
// complaints, where the user needs the one type they meant.
const listener = z.unknown().transform((value, ctx): ListenerConfig => {
  const type = (value as { type?: unknown } | null)?.type;
  const known = Object.keys(LISTENER_CONFIGS);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: `must be an object with a type (${known.join(', ')})` });
    return z.NEVER;
  }
  const t = typeof type === 'string' && Object.hasOwn(LISTENER_CONFIGS, type) ? LISTENER_CONFIGS[type]! : undefined;
  if (!t) {
    ctx.addIssue({ code: 'custom', path: ['type'], message: `type must be one of ${known.join(', ')}, got ${JSON.stringify(type)}` });
    return z.NEVER;
  }
  // The type's own issues in our words, like the rest of the config (messages.ts).
  const result = t.schema.safeParse(value, { error: defaultMessage as never, reportInput: true });
  if (result.success) return result.data as ListenerConfig;
  for (const issue of result.error.issues) ctx.addIssue(issue as z.core.$ZodRawIssue);
  return z.NEVER;
});

export const listenersSchema = z.record(name('a listener name'), listener).default({});

export interface ConfiguredListener {
  name: string;
  /** Where it is in the config: `listeners.NAME`, or `psk` for the shorthand. */
  field: string;
  type: AnyListenerConfigType;
  config: ListenerConfig;
}

/** Every listener the config asks for, the `psk:` shorthand included, in config order. */
export function configuredListeners(config: { psk?: object | undefined; listeners: Record<string, ListenerConfig> }): ConfiguredListener[] {
  const out: ConfiguredListener[] = [];
  if (config.psk) out.push({ name: 'psk', field: 'psk', type: LISTENER_CONFIGS.psk!, config: { type: 'psk', ...config.psk } });
  for (const [n, c] of Object.entries(config.listeners)) out.push({ name: n, field: `listeners.${n}`, type: LISTENER_CONFIGS[c.type]!, config: c });
  return out;
}

/** Cross-field rules: names the listeners use must exist; no two listeners on one port. */
export function checkListenerReferences(
  config: { psk?: object | undefined; listeners: Record<string, ListenerConfig>; secrets: Record<string, unknown>; credentials: Record<string, unknown> },
  fail: (field: string, message: string) => void,
): void {
  if (config.psk && Object.hasOwn(config.listeners, 'psk')) fail('psk', 'there is also a listener named psk: write it once, either as psk: or under listeners:');
  const ports = new Map<string, string>();
  for (const l of configuredListeners(config)) {
    for (const s of l.type.secrets(l.config)) {
      if (!Object.hasOwn(config.secrets, s)) fail(`${l.field}${search(l.config, s, '') ?? ''}`, `found ${JSON.stringify(s)}, but no secret has that name: write the name of a secret under secrets:`);
    }
    for (const c of l.type.credentials(l.config)) {
      if (!Object.hasOwn(config.credentials, c)) fail(`${l.field}${search(l.config, c, '') ?? ''}`, `found ${JSON.stringify(c)}, but no credentials have that name: write the name of one under credentials:`);
    }
    const listen = typeof l.config.listen === 'string' ? l.config.listen : undefined;
    const why = l.type.actsForWorkload?.(l.config);
    if (why && listen && !listensOnLoopback(listen)) {
      fail(`${l.field}.listen`, `found ${JSON.stringify(listen)}, but ${why}: anyone who reaches that address would be served as the workload; listen on loopback (127.0.0.1:PORT or [::1]:PORT)`);
    }
    const port = listen?.replace(/^.*:/, '');
    if (port && port !== '0') {
      const other = ports.get(port);
      if (other) fail(`${l.field}.listen`, `port ${port} is also the port of ${other}`);
      ports.set(port, l.field);
    }
  }
}

/** Whether "host:port" names a loopback address (false for what does not parse: the schema says why). */
export function listensOnLoopback(listen: string): boolean {
  try {
    return isLoopbackHost(parseHostPort(listen, 'listen', true).host);
  } catch {
    return false;
  }
}

/** The path (".a.b[1]") of the first string field equal to `value`, to name it in a message. */
function search(obj: unknown, value: string, at: string): string | undefined {
  if (obj === value) return at;
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      const p = search(obj[i], value, `${at}[${i}]`);
      if (p !== undefined) return p;
    }
  } else if (typeof obj === 'object' && obj !== null) {
    for (const [k, v] of Object.entries(obj)) {
      const p = search(v, value, `${at}.${k}`);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}
