// An upper directory → an OCI layer changeset (commit, build): the tar of everything the upper
// dir holds, overlayfs's markers spelled the OCI way (whiteouts.ts):
//
//   upper/a/x     0/0 character device   →  a/.wh.x        (an empty file)
//   upper/d/      opaque directory       →  d/ and d/.wh..wh..opq
//   anything else                        →  itself, with owner, mode, times, carried xattrs
//
// The upper dir may belong to a running container, so it is walked by fd (walk.ts); the
// lower layers are tsrun's own, immutable, looked up by path (lower-layers.ts).
import { closeSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { LowerLayers } from './lower-layers.js';
import { carriedXattrs } from './xattrs.js';
import { writeTar, type OwnerMap } from './tar-writer.js';
import { openDir, walk, type WalkEntry } from './walk.js';
import { isOpaque, isWhiteout, ociOpaqueName, ociWhiteoutName } from './whiteouts.js';

export interface ChangesetOptions {
  /** Entries that are no change of the container's (mount points its runtime made): left out, with what is under them. */
  skip?: (e: WalkEntry) => boolean;
  /** The owner an entry gets from the one on disk (an upper dir of shifted ids: userns-files.ts). */
  owner?: OwnerMap;
}

export interface Changeset {
  /** Entries in the tar. */
  entries: number;
  /**
   * Whether an entry changes what the lower layers show. Not when the upper dir holds only
   * directories the lowers have with the same mode and owner: overlayfs copied them up to hold
   * something that was skipped (the runtime's mount points, `etc/` for `etc/hosts`).
   */
  changed: boolean;
}

/** Writes the changeset of `upperDir` over `lowers` as a tar into `out`. */
export async function writeChangeset(
  upperDir: string,
  lowers: LowerLayers,
  out: Writable | ((tar: Readable) => Promise<void>),
  opts: ChangesetOptions = {},
): Promise<Changeset> {
  const result: Changeset = { entries: 0, changed: false };
  const upper = openDir(upperDir);
  try {
    await writeTar(
      out,
      (w) =>
        walk(upper, '', async (e) => {
          if (opts.skip?.(e) || e.st.isSocket()) return false; // sockets do not go into tars
          result.entries++;
          if (isWhiteout(e.st)) {
            result.changed = true;
            await w.entry({ name: ociWhiteoutName(e.rel), type: 'file', mode: 0o644, mtime: e.st.mtime, uid: 0, gid: 0, uname: '', gname: '' });
            return false;
          }
          await w.add(e, e.rel);
          const opaque = e.st.isDirectory() && isOpaque(e.path);
          if (opaque) {
            result.entries++;
            await w.entry({ name: ociOpaqueName(e.rel), type: 'file', mode: 0o644, mtime: e.st.mtime, uid: 0, gid: 0, uname: '', gname: '' });
          }
          if (!result.changed && (opaque || !copiedUp(e, lowers, opts.owner))) result.changed = true;
          return true;
        }),
      opts.owner,
    );
  } finally {
    closeSync(upper);
  }
  return result;
}

/**
 * A directory the lowers have with the same mode, owner and carried attributes: overlayfs only
 * copied it up (its times are not compared: the runtime's placeholder files change them).
 */
function copiedUp(e: WalkEntry, lowers: LowerLayers, owner: OwnerMap | undefined): boolean {
  if (!e.st.isDirectory()) return false;
  const lower = lowers.find(e.rel);
  if (!lower?.st.isDirectory()) return false;
  const { uid, gid } = owner ? owner(e.st) : e.st;
  if (e.st.mode !== lower.st.mode || uid !== lower.st.uid || gid !== lower.st.gid) return false;
  return xattrKey(e.path) === xattrKey(lower.path);
}

function xattrKey(path: string): string {
  return carriedXattrs(path)
    .map(([k, v]) => `${k}=${v.toString('hex')}`)
    .sort()
    .join('\0');
}
