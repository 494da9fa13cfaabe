import { decodeJwt } from 'jose';

/** When a JWT stops being valid (its `exp`), ms since the epoch; `fallback` if it has none. */
export function jwtExpiry(jwt: string, fallback: number): number {
  try {
    const { exp } = decodeJwt(jwt);
    return typeof exp === 'number' ? exp * 1000 : fallback;
  } catch {
    return fallback;
  }
}
