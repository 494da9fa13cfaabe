/**
 * The exports of a CommonJS module loaded with import(). From source, Node offers them as named
 * exports and as `default` (module.exports); from the bundle's lazily loaded chunks, only as
 * `default`. Either way this returns module.exports, typed as the module.
 */
export function cjsExports<T extends object>(namespace: T): T {
  return ((namespace as { default?: T }).default ?? namespace) as T;
}
