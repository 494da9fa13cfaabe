// "host:port" as written in the config (`psk.listen`, `psk.connect`); IPv6 in brackets.
import { isIP } from 'node:net';
import { configError } from './errors.ts';

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses "127.0.0.1:6379", "[::1]:6379", "redis:6379". `field` names the config field in errors.
 * Port 0 (any free port) only where `allowPortZero` (a listener; tests).
 */
export function parseHostPort(text: string, field: string, allowPortZero = false): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  if (!m) throw configError(`${field}: "${text}" is not host:port (write IPv6 addresses in brackets, e.g. [::1]:6379)`);
  const host = (m[1] ?? m[2])!;
  if (m[1] !== undefined && isIP(host) !== 6) throw configError(`${field}: "${host}" in brackets is not an IPv6 address`);
  return checkHostPort({ host, port: Number(m[3]) }, field, allowPortZero);
}

export function checkHostPort(hp: HostPort, field: string, allowPortZero = false): HostPort {
  if (typeof hp?.host !== 'string' || hp.host === '' || /\s/.test(hp.host)) throw configError(`${field}: host is missing or malformed`);
  if (!Number.isInteger(hp.port) || hp.port < (allowPortZero ? 0 : 1) || hp.port > 65535) {
    throw configError(`${field}: port must be ${allowPortZero ? '0' : '1'}-65535, got ${hp.port}`);
  }
  return { host: hp.host, port: hp.port };
}

export function toHostPort(value: HostPort | string, field: string, allowPortZero = false): HostPort {
  return typeof value === 'string' ? parseHostPort(value, field, allowPortZero) : checkHostPort(value, field, allowPortZero);
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
