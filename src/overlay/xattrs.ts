// The extended attributes tsrun carries when it copies a file (export, commit, cp, a volume's
// copy-up) and unpack: which ones, reading them, writing them, which failures to let go.
// Light: libc only.
import { errnoOf } from '../errors.js';
import * as libc from '../sys/libc.js';
import { isHostRoot } from './whiteouts.js';

/**
 * The extended attributes that travel with a file into tars (export, commit, `cp ... -`) and
 * cp's copies: file capabilities (`security.capability`, which docker's tars carry: `ping`
 * needs its cap_net_raw) and user attributes. Never overlayfs's own (`trusted.overlay.*` in an
 * upper dir, `user.overlay.*` rootless): in a layer they would redirect overlayfs's lookups, and
 * unpack refuses them. Nor other `trusted.*`, nor the host's labels (`security.selinux`, ...).
 */
export function carriesXattr(name: string): boolean {
  return name === 'security.capability' || (name.startsWith('user.') && !name.startsWith('user.overlay.'));
}

const NO_XATTRS = new Set(['ENOTSUP', 'EOPNOTSUPP', 'ENOENT']);

/**
 * The carried attributes of `file`: a path (never followed) or an open fd. None where its file
 * system keeps none.
 */
export function carriedXattrs(file: string | number): Array<[string, Buffer]> {
  let names: string[];
  try {
    names = libc.llistxattr(file);
  } catch (err) {
    if (NO_XATTRS.has(errnoOf(err) ?? '')) return [];
    throw err;
  }
  const out: Array<[string, Buffer]> = [];
  for (const name of names) {
    if (!carriesXattr(name)) continue;
    const value = libc.lgetxattr(file, name);
    if (value !== undefined) out.push([name, value]);
  }
  return out;
}

/**
 * Sets attributes on the open file `fd`. As docker, those the destination's file system cannot
 * keep are dropped, and so are security.* ones where the caller lacks the right (not root).
 */
export function applyXattrs(fd: number, xattrs: Array<[string, Buffer]>): void {
  for (const [name, value] of xattrs) {
    try {
      libc.fsetxattr(fd, name, value);
    } catch (err) {
      if (!droppableXattrError(err, name)) throw err;
    }
  }
}

/**
 * Whether setting xattr `name` failed in a way docker too lets go: the file system keeps no
 * xattrs (ENOTSUP); without the host's root, trusted.* and security.* are not ours to set; and
 * the kernel keeps user.* only on files and directories (EPERM on a symlink or a device).
 */
export function droppableXattrError(err: unknown, name: string): boolean {
  const code = errnoOf(err);
  if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return true;
  return code === 'EPERM' && (!isHostRoot() || name.startsWith('user.'));
}
