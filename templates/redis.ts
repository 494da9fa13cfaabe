// The redis preset's command line, as data: one list element per argument, placeholders filled
// by src/render/ (never a shell string). Data only: no logic belongs in this file.
//
// Placeholders: {{with.tlsPort}} (default 6379), {{tls.ca}}, {{tls.cert}}, {{tls.key}} (paths of
// the secrets named by with.ca/cert/key, default ca/cert/key), {{output.dir}}.
// Redis 7 reads each argument as one quoted token (sdscatrepr), so a value with spaces or quotes
// stays one value; every setting here exists in Redis 6.0 and later.
export const argv = [
  'redis-server',
  // No plaintext listener at all (the reference demo left 6379 open).
  '--port', '0',
  '--tls-port', '{{with.tlsPort}}',
  '--tls-cert-file', '{{tls.cert}}',
  '--tls-key-file', '{{tls.key}}',
  '--tls-ca-cert-file', '{{tls.ca}}',
  // Mutual TLS: a client without a certificate from the CA is refused during the handshake.
  '--tls-auth-clients', 'yes',
  // Already Redis's default; pinned so the plan shows it and no build can widen it.
  '--tls-protocols', 'TLSv1.2 TLSv1.3',
  // Protected mode refuses every non-loopback client when the default user has no password
  // (Redis 7). Here the client certificate is the authentication, and the server exists to
  // serve remote clients: without this, mTLS clients from outside would be refused.
  '--protected-mode', 'no',
  // A secret-bearing cache in a TEE persists nothing: no RDB snapshots, no AOF.
  '--save', '',
  '--appendonly', 'no',
  // Whatever Redis might still write (an explicit SAVE from a client) lands on the tmpfs output
  // directory, which is wiped when the init exits, never on the image's disk.
  '--dir', '{{output.dir}}',
];

/** Appended as `--bind ADDR...` when with.bind is set; otherwise Redis binds all interfaces. */
export const bindOption = '--bind';
