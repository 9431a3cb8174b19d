// overlayfs as data: the one place where image layers become a container's file system, and
// where a container's changes become a layer again (pull, run, commit, diff, export, volume
// copy-up, build).
//
//   layer dir    One image layer unpacked: `layers/<chain id>/diff` in the store, read-only
//                for ever once made. A container's root stacks them: `lowerdir=top:...:bottom`.
//   upper dir    A container's own writable layer (`containers/<id>/upper`), on top of its
//                layer dirs: a file it writes or changes is copied up there whole, and what it
//                deletes is recorded there. With the layer dirs below it, it is the container's
//                root; alone, it is exactly the container's changes (commit, diff).
//   whiteout     A deletion. In a layer dir or upper dir: a 0/0 character device at the
//                deleted name. In an OCI layer tar: an empty file `.wh.<name>` next to it.
//   opaque dir   A directory that hides everything the layers below have in it (it was
//                deleted and made anew). In a layer dir or upper dir: the xattr
//                `trusted.overlay.opaque=y` on it (`user.overlay.opaque` rootless). In an OCI
//                tar: an empty file `<dir>/.wh..wh..opq`.
//
// The interface, one function a direction:
//   lowers + upper → mount options   mountOptions() (mount-options.ts)
//   upper → OCI changeset tar        writeChangeset() (changeset.ts)
//   OCI changeset tar → layer dir    the store's safe unpack (image/unpack.ts, which keeps the
//                                    rules for hostile tars) spelling whiteouts and opaque dirs
//                                    with whiteouts.ts; what a layer takes from the layers below
//                                    it is applied once they are in (inherit.ts)
//   lowers, merged, without mounting LowerLayers (lower-layers.ts): diff, commit, volume copy-up
//
// Cheap to import: the tar code (tar-stream) loads only when writeChangeset runs, so `run` (which
// needs the mount options and the merged lowers) does not pay for it. walk.ts and tar-writer.ts
// are the fd-based tree walk and tar writer underneath, which export and cp use as well.
import type { Readable, Writable } from 'node:stream';
import type { Changeset, ChangesetOptions } from './changeset.js';
import type { LowerLayers } from './lower-layers.js';

export { mountOptions, type OverlayDirs } from './mount-options.js';
export { LowerLayers } from './lower-layers.js';
export {
  OPAQUE_MARKER,
  OPAQUE_XATTR,
  WHITEOUT_PREFIX,
  isOpaque,
  isWhiteout,
  makeWhiteout,
  markOpaque,
  ociMarker,
  ociOpaqueName,
  ociWhiteoutName,
  type OciMarker,
} from './whiteouts.js';
export type { Changeset, ChangesetOptions } from './changeset.js';

/** The changeset of `upperDir` over `lowers`, as an OCI layer tar written into `out` (changeset.ts). */
export async function writeChangeset(
  upperDir: string,
  lowers: LowerLayers,
  out: Writable | ((tar: Readable) => Promise<void>),
  opts: ChangesetOptions = {},
): Promise<Changeset> {
  const changeset = await import('./changeset.js');
  return changeset.writeChangeset(upperDir, lowers, out, opts);
}
