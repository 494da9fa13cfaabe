// The redis preset's command line, as data: one list element per argument, placeholders filled
// by src/render/ (never a shell string). Data only: no logic belongs in this file.
//
// Placeholders: {{with.tlsPort}} (default 6379), {{tls.ca}}, {{tls.cert}}, {{tls.key}} (paths of
// the secrets named by with.ca/cert/key, default ca/cert/key), {{output.dir}}, {{redis.socket}}
// (the admin socket: {{output.dir}}/ + socket, below).
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
  // The admin socket: how tee-init reloads rotated certificates (reloadArgv) and sees redis is
  // ready, without a client certificate. Not a relay: the socket is 0700 in the 0700 output
  // directory, both owned by redis's user, so only that user and root reach it. Redis removes it
  // at exit.
  '--unixsocket', '{{redis.socket}}',
  '--unixsocketperm', '700',
];

/** The admin socket's name in the output directory; {{redis.socket}} is its full path. */
export const socket = 'redis.sock';

/**
 * Applies rotated certificates: CONFIG SET re-reads the three files (same paths: the visible
 * paths never change), and redis serves them to new connections; open ones keep theirs. Redis
 * checks the new set (key matches certificate, CA loads) and keeps the old one on an error.
 * `-e` (redis-cli 6.2 and later) makes an error reply exit 1: without it redis-cli prints the
 * ERR and exits 0, and a failed reload would look like a success.
 */
export const reloadArgv = [
  'redis-cli', '-e', '-s', '{{redis.socket}}',
  'CONFIG', 'SET',
  'tls-cert-file', '{{tls.cert}}',
  'tls-key-file', '{{tls.key}}',
  'tls-ca-cert-file', '{{tls.ca}}',
];

/** How long the reload command may take before it counts as failed. */
export const reloadTimeoutMs = 10_000;

/** Appended as `--bind ADDR...` when with.bind is set; otherwise Redis binds all interfaces. */
export const bindOption = '--bind';
