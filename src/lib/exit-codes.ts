// Exit statuses of tee-init itself (README.md, "Exit status"). A child's own status is passed
// through unchanged; these are only used when tee-init fails before or around the child.
export const EXIT = {
  ok: 0,
  notExecutable: 126,
  notFound: 127,
  usage: 64, // EX_USAGE: bad command line
  data: 65, // EX_DATAERR: CRC32C mismatch, malformed secret, key/cert mismatch
  noInput: 66, // EX_NOINPUT: attestation token missing or unreadable
  unavailable: 69, // EX_UNAVAILABLE: a remote service stayed down past the deadline
  software: 70, // EX_SOFTWARE: a bug in tee-init itself
  noPerm: 77, // EX_NOPERM: remote permission denied, or attestation policy not met
  config: 78, // EX_CONFIG: configuration error
  interrupted: 130, // SIGINT during bootstrap
  terminated: 143, // SIGTERM during bootstrap
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
