// Whiteouts and opaque directories: how a layer says "this is gone", in the two spellings tsrun
// converts between.
//
//   meaning                          OCI layer tar (image spec)     overlayfs layer or upper dir
//   `x` was deleted                  an empty file `.wh.x`          `x` is a character device 0/0
//   dir `d` hides what lower layers  an empty file                  `d` has the xattr
//     have in it (replaced whole)      `d/.wh..wh..opq`               trusted.overlay.opaque=y
//
// A rootless overlay (mounted with `userxattr`) reads user.overlay.opaque instead. Other
// `.wh..wh.*` names are aufs's own bookkeeping (`.wh..wh.plnk`) and mean nothing here.
// OCI → overlayfs is image/unpack.ts (with its rules for hostile tars); overlayfs → OCI is
// changeset.ts. Light: node:fs and, on first use, libc.
import type * as fs from 'node:fs';
import { errnoOf } from '../errors.js';
import * as libc from '../sys/libc.js';

/** Prefix of an OCI whiteout's name. */
export const WHITEOUT_PREFIX = '.wh.';
/** An OCI opaque-directory marker's name. */
export const OPAQUE_MARKER = '.wh..wh..opq';

// ---- OCI spelling ------------------------------------------------------------------------------

/** What a tar entry's base name says, if it is one of the markers. */
export type OciMarker = { kind: 'whiteout'; name: string } | { kind: 'opaque' } | { kind: 'aufs' };

/**
 * Reads a tar entry's base name: `.wh.x` whites out `x` (not checked here: `.wh..` would name
 * the directory itself, the unpacker refuses such names), `.wh..wh..opq` makes its directory
 * opaque, any other `.wh..wh.` name is aufs metadata. Undefined: an ordinary entry.
 */
export function ociMarker(base: string): OciMarker | undefined {
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return { kind: 'aufs' };
  return { kind: 'whiteout', name: base.slice(WHITEOUT_PREFIX.length) };
}

/** `a/b` deleted → the tar name `a/.wh.b`. */
export function ociWhiteoutName(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
}

/** Directory `a` opaque → the tar name `a/.wh..wh..opq` (`.wh..wh..opq` for the root). */
export function ociOpaqueName(dirRel: string): string {
  return dirRel === '' ? OPAQUE_MARKER : `${dirRel}/${OPAQUE_MARKER}`;
}

// ---- overlayfs spelling ------------------------------------------------------------------------

const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'];

/** Root of the host's user namespace: not rootless tsrun's root, whose owners are mapped ones. */
export function isHostRoot(): boolean {
  return process.getuid?.() === 0 && !process.env.TSRUN_USERNS;
}

/**
 * Where this process marks a directory opaque: trusted.overlay.opaque as the host's root, else
 * user.overlay.opaque (what overlayfs reads when mounted with `userxattr`, rootless tsrun).
 */
export const OPAQUE_XATTR = isHostRoot() ? OPAQUE_XATTRS[0]! : OPAQUE_XATTRS[1]!;

/** overlayfs's own attributes: never copied from one layer to another, never taken from a tar. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

export function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Whether the directory at `path` (not followed) is marked opaque, in either namespace. */
export function isOpaque(path: string): boolean {
  for (const name of OPAQUE_XATTRS) {
    try {
      if (libc.lgetxattr(path, name)?.toString() === 'y') return true;
    } catch (err) {
      // Reading trusted.* needs CAP_SYS_ADMIN; without it the attribute cannot be there.
      if (errnoOf(err) !== 'EPERM' && errnoOf(err) !== 'ENOTSUP' && errnoOf(err) !== 'EOPNOTSUPP') throw err;
    }
  }
  return false;
}

/** Makes the whiteout `path` (mknod never follows a final symlink; EEXIST if something is there). */
export function makeWhiteout(path: string): void {
  libc.mknod(path, libc.S_IFCHR, 0, 0);
}

/** Marks the directory `path` (not followed) opaque. */
export function markOpaque(path: string, xattr: string = OPAQUE_XATTR): void {
  libc.lsetxattr(path, xattr, Buffer.from('y'));
}
