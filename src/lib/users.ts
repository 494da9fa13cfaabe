// USER, UID, USER:GROUP or UID:GID, as in `docker run --user`, resolved through /etc/passwd and
// /etc/group (Node has no getpwnam). Used for run.user and output.owner.
import { readFileSync } from 'node:fs';
import { configError } from './errors.ts';

export interface UserIds {
  uid: number;
  gid: number;
  name: string | undefined;
  home: string | undefined;
}

interface Entry { name: string; id: number; gid: number; home: string }

function table(file: string): Entry[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && f[0] && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, id: Number(f[2]), gid: Number(f[3] ?? f[2]), home: f[5] ?? '' }));
}

/**
 * The largest id each use accepts. Linux ids are 0..2^32-2 (2^32-1 is (uid_t)-1, "leave
 * unchanged": a chown to it silently does nothing). Node's spawn() takes uid/gid as int32, so a
 * child can only be started as 0..2^31-1: checked here, at config time, not as a crash at spawn.
 */
export const MAX_ID = { chown: 2 ** 32 - 2, spawn: 2 ** 31 - 1 } as const;
export type IdUse = keyof typeof MAX_ID;

/**
 * A numeric uid not in /etc/passwd gets gid = uid (never root's group by accident).
 * `field` names the config field in error messages; `use` says which id range applies.
 */
export function resolveUser(spec: string, field: string, use: IdUse, etc = '/etc'): UserIds {
  const ids = lookUp(spec, field, etc);
  for (const [what, id] of [['uid', ids.uid], ['gid', ids.gid]] as const) {
    if (!Number.isSafeInteger(id) || id > MAX_ID[use]) {
      throw configError(`${field}: ${what} ${id} in ${JSON.stringify(spec)} is out of range: write a ${what} from 0 to ${MAX_ID[use]}${use === 'spawn' ? ' (the largest Node.js can start a program as)' : ''}`);
    }
  }
  return ids;
}

function lookUp(spec: string, field: string, etc: string): UserIds {
  const [userPart, groupPart] = spec.split(':') as [string, string | undefined];
  const passwd = table(`${etc}/passwd`);
  const byName = passwd.find((e) => e.name === userPart);
  const byId = /^\d+$/.test(userPart) ? passwd.find((e) => e.id === Number(userPart)) : undefined;
  const user = byName ?? byId;
  if (!user && !/^\d+$/.test(userPart)) throw configError(`${field}: found ${JSON.stringify(userPart)}, but there is no such user in ${etc}/passwd: create it in the image, or write a numeric uid (tee-init check --etc DIR checks against an image's /etc)`);
  const uid = user ? user.id : Number(userPart);
  let gid = user ? user.gid : uid;
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const g = table(`${etc}/group`).find((e) => e.name === groupPart);
      if (!g) throw configError(`${field}: found ${JSON.stringify(groupPart)}, but there is no such group in ${etc}/group: create it in the image, or write a numeric gid`);
      gid = g.id;
    }
  }
  return { uid, gid, name: user?.name, home: user?.home || undefined };
}
