// What a layer takes from the layers below it, applied once they are all unpacked: the parts of
// the OCI image spec's changeset rules that a layer directory cannot say by itself.
//
//   - A directory the layer implies (`tmp/x` with no `tmp/` entry) keeps the attributes the
//     lower layers give it: "if the entry and the existing path are both directories, then the
//     existing path's attributes MUST be replaced by those of the entry", and here there is no
//     entry. Unpacked alone, it would be a 0755 root directory that overlayfs shows instead of
//     the lower one: /tmp would lose its 1777. (docker and podman get this wrong.)
//   - A `.wh..wh..opq` at the layer's root hides everything below it, but overlayfs ignores the
//     opaque attribute on a layer's root directory: each name the lower layers have at the top
//     gets a whiteout instead, and a directory of this layer there becomes opaque.
//   - A whiteout of a name no lower layer has hides nothing, and where its directory does not
//     merge with a lower one overlayfs lists it as a name that cannot be opened: it goes.
//
// Both depend only on the layer and the chain below it (its chain ID says which), so applying
// them again gives the same tree: a layer store may do it whenever the chain is complete.
import * as fs from 'node:fs';
import { errnoOf } from '../errors.js';
import * as libc from '../sys/libc.js';
import type { LowerLayers } from './lower-layers.js';
import { lstatOrUndefined } from './walk.js';
import { isOverlayXattr, isWhiteout, makeWhiteout, markOpaque } from './whiteouts.js';
import { droppableXattrError } from './xattrs.js';

export interface FromBelow {
  /** Implied directories, relative to the layer: no whiteout or opaque dir of the layer hides their lower entry. */
  implied: string[];
  /** The layer has `.wh..wh..opq` at its root. */
  opaqueRoot: boolean;
  /** Whiteouts of the layer (0/0 devices), relative to it: each stays only if it hides something. */
  whiteouts: string[];
}

export function needsBelow(f: FromBelow | undefined): f is FromBelow {
  return f !== undefined && (f.implied.length > 0 || f.opaqueRoot || f.whiteouts.length > 0);
}

const { O_RDONLY, O_DIRECTORY } = fs.constants;
/** Paths in a layer are looked up below it and through no symlink at all. */
const NO_LINKS = libc.RESOLVE_BENEATH | libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_NO_MAGICLINKS;

/** Applies `f` to the layer directory `dir`, whose lower layers are `below`. */
export function applyFromBelow(dir: string, f: FromBelow, below: LowerLayers): void {
  if (f.opaqueRoot) hideBelowRoot(dir, below);
  const root = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    for (const rel of f.whiteouts) if (!below.find(rel)) removeWhiteout(root, rel);
    for (const rel of f.implied) inherit(root, rel, below);
  } finally {
    fs.closeSync(root);
  }
}

function inherit(root: number, rel: string, below: LowerLayers): void {
  const lower = below.find(rel);
  if (!lower?.st.isDirectory()) return; // nothing below: the new directory's defaults stand
  let fd: number;
  try {
    // Never through a symlink: only the directory the unpacker made at exactly this path.
    fd = libc.openat2(root, rel, O_RDONLY | O_DIRECTORY | libc.O_CLOEXEC, NO_LINKS);
  } catch (err) {
    if (['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV'].includes(errnoOf(err) ?? '')) return;
    throw err;
  }
  try {
    const { st } = lower;
    if (process.getuid?.() === 0) fs.fchownSync(fd, st.uid, st.gid);
    fs.fchmodSync(fd, st.mode & 0o7777); // after chown, which clears set-id bits
    for (const name of xattrNames(lower.path)) {
      const value = libc.lgetxattr(lower.path, name);
      if (value !== undefined) setXattr(fd, name, value);
    }
    fs.futimesSync(fd, st.atime, st.mtime);
  } finally {
    libc.close(fd);
  }
}

/** Unlinks the whiteout at `rel` (found without following any symlink), if it is still one. */
function removeWhiteout(root: number, rel: string): void {
  const slash = rel.lastIndexOf('/');
  let dir: number;
  try {
    dir = libc.openat2(root, slash < 0 ? '.' : rel.slice(0, slash), libc.O_PATH | O_DIRECTORY | libc.O_CLOEXEC, NO_LINKS);
  } catch (err) {
    if (['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV'].includes(errnoOf(err) ?? '')) return;
    throw err;
  }
  try {
    const path = `/proc/self/fd/${dir}/${rel.slice(slash + 1)}`;
    const st = lstatOrUndefined(path);
    if (st && isWhiteout(st)) keepingTimes(`/proc/self/fd/${dir}`, () => done(() => fs.unlinkSync(path), 'ENOENT'));
  } finally {
    libc.close(dir);
  }
}

function hideBelowRoot(dir: string, below: LowerLayers): void {
  keepingTimes(dir, () => {
    for (const name of below.list('')) {
      const path = `${dir}/${name}`;
      const st = lstatOrUndefined(path);
      if (!st) done(() => makeWhiteout(path), 'EEXIST');
      else if (st.isDirectory()) markOpaque(path);
      // A file, link or whiteout of this layer hides the lower entry already.
    }
  });
}

/**
 * `op`, where `already` says another tsrun finishing the same layer at the same time did it
 * first (two pulls of one image: both apply the same changes).
 */
function done(op: () => void, already: string): void {
  try {
    op();
  } catch (err) {
    if (errnoOf(err) !== already) throw err;
  }
}

/** Runs `change` in the directory `dir` and puts back the times the layer gave it. */
function keepingTimes(dir: string, change: () => void): void {
  const st = fs.statSync(dir);
  change();
  fs.utimesSync(dir, st.atime, st.mtime);
}

function xattrNames(path: string): string[] {
  try {
    return libc.llistxattr(path).filter((n) => !isOverlayXattr(n));
  } catch (err) {
    if (['ENOTSUP', 'EOPNOTSUPP'].includes(errnoOf(err) ?? '')) return [];
    throw err;
  }
}

function setXattr(fd: number, name: string, value: Buffer): void {
  try {
    libc.fsetxattr(fd, name, value);
  } catch (err) {
    if (!droppableXattrError(err, name)) throw err; // as when unpacking
  }
}
