import { isIP } from 'node:net';

/** True for 127.0.0.0/8, ::1 and localhost: the only places plain http may go. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * Why `url` may not be used as a Google API endpoint, or undefined when it may.
 * Plain http would hand the attestation token and access tokens to anyone on the path,
 * so it is refused everywhere but loopback (tests, local emulators).
 */
export function checkEndpointUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:') {
    return isLoopbackHost(u.hostname) ? undefined : 'plain http is allowed only to loopback addresses (127.0.0.1, ::1, localhost): use https';
  }
  return `unsupported scheme ${u.protocol}: use https`;
}
