// TLS versions and suites for both modes (reference/psk.md, "Node TLS-PSK behaviour").
import type { SecureContextOptions } from 'node:tls';

/**
 * TLS 1.3 external PSKs set through Node's (legacy) PSK callbacks are SHA-256 PSKs, so only the
 * SHA-256 suites can use them; TLS_AES_256_GCM_SHA384 alone fails the handshake.
 */
export const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'] as const;

/**
 * Only for peers that cannot do TLS 1.3 (older stunnel setups, `openssl -tls1_2`), and only when
 * enabled: ECDHE-PSK has forward secrecy, PSK-AES256-GCM-SHA384 is the plain-PSK suite many
 * 1.2 peers offer. DHE-PSK would need DH parameters.
 */
export const TLS12_PSK_SUITES = ['ECDHE-PSK-CHACHA20-POLY1305', 'PSK-AES256-GCM-SHA384'] as const;

export interface PskTlsOptions {
  /** Also accept (server) or offer (client) TLS 1.2 with TLS12_PSK_SUITES. Default false: 1.3 only. */
  tls12?: boolean;
}

export function versionOptions({ tls12 = false }: PskTlsOptions = {}): Pick<SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers'> {
  // Node takes both lists in `ciphers` (names starting TLS_ are 1.3 suites). The default 1.2 list
  // excludes PSK, so the 1.2 suites must be named; with 1.2 off the 1.2 list is empty.
  return tls12
    ? { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: [...TLS13_SUITES, ...TLS12_PSK_SUITES].join(':') }
    : { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: TLS13_SUITES.join(':') };
}
