// The Confidential Space launcher's limits on custom tokens (shared/reference/attested-tls.md):
// at most 6 nonces, each 10–74 bytes (newer documents say 8–88: what fits both is used, so a
// request never meets a 400), an audience of at most 512 bytes. A leaf: the config, the
// attester and the listeners (in worker threads too, without zod) all read these.
export const NONCE_BYTES = { min: 10, max: 74 } as const;
export const MAX_NONCES = 6;
export const MAX_AUDIENCE_BYTES = 512;
