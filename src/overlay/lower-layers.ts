// The image's layers as overlayfs merges them, read from the store without mounting anything:
// whiteouts (0/0 character devices) and opaque directories decide what a lower layer shows.
// Light on purpose (node:fs and, for the opaque attribute, libc): `run` loads it to fill a new
// volume from the image, and must not load what export and diff need (tar-stream). A layer's
// unpack reads it too, for the directories the layer implies (inherit.ts).
import * as fs from 'node:fs';
import { join } from 'node:path';
import { errnoOf } from '../errors.js';
import * as libc from '../sys/libc.js';

/** lstat, or undefined where nothing is (ENOENT, or a non-directory on the way). */
export function lstatOrUndefined(path: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.overlay.opaque'];

/**
 * Where this process marks a directory opaque: trusted.overlay.opaque as the host's root, else
 * user.overlay.opaque (what overlayfs reads when mounted with `userxattr`, rootless tsrun).
 */
export const OPAQUE_XATTR = isHostRoot() ? OPAQUE_XATTRS[0]! : OPAQUE_XATTRS[1]!;

/** Root of the host's user namespace: not rootless tsrun's root, whose owners are mapped ones. */
export function isHostRoot(): boolean {
  return process.getuid?.() === 0 && !process.env.TSRUN_USERNS;
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

/** overlayfs's own attributes: never copied from one layer to another. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

export function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

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

/**
 * The image's layers as overlayfs merges them (top first), for lookups by relative path.
 * What a container sees below its upper dir.
 */
export class LowerLayers {
  constructor(private readonly dirs: string[]) {}

  /** A container's lower layers (what its record lists, relative to its store). */
  static of(found: { record: { lowerDirs: string[] }; paths: { storeRoot: string } }): LowerLayers {
    return new LowerLayers(found.record.lowerDirs.map((l) => join(found.paths.storeRoot, l)));
  }

  /** The entry at `rel` in the merged lower layers, or undefined. */
  stat(rel: string): fs.Stats | undefined {
    return this.find(rel)?.st;
  }

  /** The entry at `rel` in the merged lower layers and where it is on disk, or undefined. */
  find(rel: string): { st: fs.Stats; path: string } | undefined {
    for (const dir of this.dirs) {
      const found = this.lookIn(dir, rel);
      if (found.st) return { st: found.st, path: found.path };
      if (found.hidesBelow) return undefined;
    }
    return undefined;
  }

  /** Names in the merged lower directory `rel` (what an opaque upper directory hides). */
  list(rel: string): string[] {
    const names = new Set<string>();
    const hidden = new Set<string>();
    for (const dir of this.dirs) {
      const found = this.lookIn(dir, rel);
      if (found.st?.isDirectory()) {
        for (const name of fs.readdirSync(found.path)) {
          if (names.has(name) || hidden.has(name)) continue;
          const st = lstatOrUndefined(`${found.path}/${name}`);
          if (st && isWhiteout(st)) hidden.add(name);
          else names.add(name);
        }
      } else if (found.st) break;
      if (found.hidesBelow) break;
    }
    return [...names].sort();
  }

  /**
   * `rel` in one layer, component by component (never through a symlink). `hidesBelow`: the
   * layers below do not count for this path (a whiteout, a non-directory on the way, an
   * opaque directory on the way or at the end).
   */
  private lookIn(dir: string, rel: string): { st?: fs.Stats; path: string; hidesBelow: boolean } {
    let p = dir;
    let opaque = false;
    const parts = rel === '' ? [] : rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      p = `${p}/${parts[i]}`;
      const st = lstatOrUndefined(p);
      if (!st) return { path: p, hidesBelow: opaque };
      if (isWhiteout(st)) return { path: p, hidesBelow: true };
      if (i === parts.length - 1) return { st, path: p, hidesBelow: opaque || (st.isDirectory() && isOpaque(p)) };
      if (!st.isDirectory()) return { path: p, hidesBelow: true };
      if (isOpaque(p)) opaque = true;
    }
    return { st: fs.lstatSync(p), path: p, hidesBelow: false };
  }
}
