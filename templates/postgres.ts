// The postgres preset's command line and pg_hba.conf, as data: one list element per argument,
// placeholders filled by src/render/ (never a shell string). Data only: no logic belongs here.
//
// Placeholders: {{with.port}} (default 5432), {{pg.listen}} (with.listenAddresses joined by ","),
// {{pg.dataDir}} (with.dataDir, default {{output.dir}}/pgdata), {{tls.ca}}, {{tls.cert}},
// {{tls.key}}, {{pg.hba}} (the rendered pg_hba.conf), {{output.dir}} (the admin socket's directory).
// PostgreSQL reads `-c name=value` as one setting per argument: a value is never re-parsed.
export const argv = [
  'postgres',
  '-D', '{{pg.dataDir}}',
  '-c', 'listen_addresses={{pg.listen}}',
  '-c', 'port={{with.port}}',
  // TLS on, and only TLS from the network: pg_hba.conf has hostssl lines only.
  '-c', 'ssl=on',
  '-c', 'ssl_cert_file={{tls.cert}}',
  '-c', 'ssl_key_file={{tls.key}}',
  // Client certificates must chain to this CA (the `cert` method checks them and maps CN -> user).
  '-c', 'ssl_ca_file={{tls.ca}}',
  '-c', 'ssl_min_protocol_version=TLSv1.2',
  '-c', 'hba_file={{pg.hba}}',
  // The admin socket lives in the tmpfs output directory, wiped with everything else.
  '-c', 'unix_socket_directories={{output.dir}}',
  '-c', 'unix_socket_permissions=0700',
  // Logs go to the inherited stderr (Cloud Logging), not to files on a disk.
  '-c', 'logging_collector=off',
];

export const hbaFile = 'pg_hba.conf';

/**
 * Who may connect how. `cert`: the client certificate must verify against ssl_ca_file and its
 * CN is the database user. `peer`: on the socket, the OS user is the database user (admin).
 */
export const hba = [
  '# Rendered by tee-init (postgres preset). TYPE DATABASE USER ADDRESS METHOD',
  'local   all all           peer',
  'hostssl all all 0.0.0.0/0 cert',
  'hostssl all all ::/0      cert',
  '',
].join('\n');

/** A fast shutdown: SIGTERM ("smart") waits for every client and ends in SIGKILL and leaked shared memory. */
export const stopSignal = 'SIGINT';

/** Applies rotated certificates: the postmaster re-reads the ssl_* files (and pg_hba.conf). */
export const reloadSignal = 'SIGHUP';

/** Ready once the admin socket accepts (it appears when the postmaster listens). */
export const readySocket = '{{output.dir}}/.s.PGSQL.{{with.port}}';
