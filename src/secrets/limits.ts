/** Secret Manager's own limit for a version's payload; a file secret gets no more. */
export const MAX_PAYLOAD = 64 * 1024;
