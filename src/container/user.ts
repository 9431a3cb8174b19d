// `-u`/the image's User → numeric ids, looked up in the image's own /etc/passwd and /etc/group
// (the top-most layer that has the file wins; a whiteout hides the lower ones).
import { readFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError } from '../errors.js';
import type { ResolvedUser } from '../namespaces/spec.js';

/** Read a file of the merged image from its layer directories (top layer first). */
export function readImageFile(layerDirsTopFirst: string[], path: string): string | undefined {
  for (const dir of layerDirsTopFirst) {
    const p = join(dir, path);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isCharacterDevice() && st.rdev === 0) return undefined; // overlay whiteout
    if (!st.isFile()) return undefined;
    return readFileSync(p, 'utf8');
  }
  return undefined;
}

interface Entry {
  name: string;
  id: number;
  gid: number;
  home: string;
  members: string[];
}

function parseDb(text: string | undefined, kind: 'passwd' | 'group'): Entry[] {
  if (!text) return [];
  const out: Entry[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const f = line.split(':');
    if (kind === 'passwd' && f.length >= 7) {
      out.push({ name: f[0]!, id: Number(f[2]), gid: Number(f[3]), home: f[5]!, members: [] });
    } else if (kind === 'group' && f.length >= 4) {
      out.push({ name: f[0]!, id: Number(f[2]), gid: Number(f[2]), home: '', members: f[3]!.split(',').filter(Boolean) });
    }
  }
  return out;
}

const isNumeric = (s: string) => /^\d+$/.test(s);

/** user[:group], each a name or a number, as docker accepts them. */
export function resolveUser(spec: string | undefined, layerDirsTopFirst: string[], groupAdd: string[] = []): ResolvedUser {
  const passwd = parseDb(readImageFile(layerDirsTopFirst, 'etc/passwd'), 'passwd');
  const groups = parseDb(readImageFile(layerDirsTopFirst, 'etc/group'), 'group');
  const [userPart = '', groupPart] = (spec ?? '').split(':', 2) as [string?, string?];
  const user = userPart === '' ? '0' : userPart;

  const entry = passwd.find((e) => (isNumeric(user) ? e.id === Number(user) : e.name === user));
  if (!entry && !isNumeric(user)) {
    throw new TsrunError('EINVAL_FLAG', `unable to find user ${user}: no matching entries in passwd file`);
  }
  if (isNumeric(user) && Number(user) > 0xfffffffe) throw new TsrunError('EINVAL_FLAG', `uid ${user} is out of range`);
  const uid = entry ? entry.id : Number(user);
  let gid = entry ? entry.gid : 0;
  if (groupPart !== undefined && groupPart !== '') {
    const g = groups.find((e) => (isNumeric(groupPart) ? e.id === Number(groupPart) : e.name === groupPart));
    if (!g && !isNumeric(groupPart)) throw new TsrunError('EINVAL_FLAG', `unable to find group ${groupPart}: no matching entries in group file`);
    gid = g ? g.id : Number(groupPart);
  }
  // Supplementary groups: every group that lists the user by name (docker does the same).
  const name = entry?.name;
  const additionalGids = name === undefined ? [] : groups.filter((g) => g.members.includes(name) && g.id !== gid).map((g) => g.id);
  // --group-add: numbers as they are, names from the image's /etc/group.
  for (const extra of groupAdd) {
    const g = isNumeric(extra) ? Number(extra) : groups.find((e) => e.name === extra)?.id;
    if (g === undefined) throw new TsrunError('EINVAL_FLAG', `unable to find group ${extra}: no matching entries in group file`);
    if (g !== gid && !additionalGids.includes(g)) additionalGids.push(g);
  }
  return { uid, gid, additionalGids, home: entry?.home || '/' };
}
