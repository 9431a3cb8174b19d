// `-u`/the image's User → numeric ids, looked up in the image's own /etc/passwd and /etc/group
// (the top-most layer that has the file wins; a whiteout hides the lower ones).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { TsrunError, errnoOf } from '../errors.js';
import type { ResolvedUser } from '../namespaces/spec.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NOCTTY } = constants;
/** Node's fs has no O_PATH constant; Linux's value. */
const O_PATH = 0o10000000;
/** More than any real passwd or group file: a container cannot make `exec -u` read gigabytes. */
const MAX_BYTES = 4 * 1024 * 1024;

/**
 * Read a file of the merged image from its layer directories (top layer first). Each directory
 * on the way is opened from the one before it, never through a symlink: the layers come from an
 * image, and `exec` also reads the container's upper directory, which the container writes
 * while tsrun reads. An `etc` made a symlink to a host directory (or swapped for one meanwhile)
 * must not make tsrun, as root, read the host's files.
 */
export function readImageFile(layerDirsTopFirst: string[], path: string): string | undefined {
  for (const dir of layerDirsTopFirst) {
    const found = openInLayer(dir, path);
    if (found === 'absent') continue;
    if (found === 'hidden') return undefined;
    return found;
  }
  return undefined;
}

/** The file's text; 'hidden' (a whiteout, or not a regular file: nothing below shows); 'absent'. */
function openInLayer(dir: string, rel: string): string | 'hidden' | 'absent' {
  const parts = rel.split('/');
  const leaf = parts.pop()!;
  let fd: number;
  try {
    fd = openSync(dir, O_RDONLY | O_DIRECTORY);
  } catch {
    return 'absent';
  }
  try {
    for (const part of parts) {
      let next: number;
      try {
        next = openSync(`/proc/self/fd/${fd}/${part}`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') return 'absent';
        // A file or a symlink on the way (never followed) hides the lower layers' directory.
        if (errnoOf(err) === 'ENOTDIR' || errnoOf(err) === 'ELOOP') return 'hidden';
        throw err;
      }
      closeSync(fd);
      fd = next;
    }
    // First an O_PATH handle, which opens nothing: the container may have swapped the file for
    // a device node since any check, and opening a device can act (a watchdog arms, a tty
    // becomes tsrun's). Only a regular file is then opened for reading, through that handle.
    let handle: number;
    try {
      handle = openSync(`/proc/self/fd/${fd}/${leaf}`, O_PATH | O_NOFOLLOW);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return 'absent';
      throw err;
    }
    let file: number;
    try {
      if (!fstatSync(handle).isFile()) return 'hidden'; // a whiteout, a symlink, a directory: no lower file shows
      file = openSync(`/proc/self/fd/${handle}`, O_RDONLY | O_NOCTTY);
    } finally {
      closeSync(handle);
    }
    try {
      const st = fstatSync(file);
      const buf = Buffer.alloc(Math.min(st.size, MAX_BYTES));
      let n = 0;
      while (n < buf.length) {
        const r = readSync(file, buf, n, buf.length - n, null);
        if (r === 0) break;
        n += r;
      }
      return buf.subarray(0, n).toString('utf8');
    } finally {
      closeSync(file);
    }
  } finally {
    closeSync(fd);
  }
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
