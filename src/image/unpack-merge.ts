// What one layer's unpack notes for the OCI image spec's merge rules, and the part of them it
// hands on to the layer store, which completes them once the layers below are in
// (overlay/inherit.ts). Paths are layer-relative, as unpack.ts cleans them.
//
//   - Whiteouts remove only what the layers below have ("Whiteouts"): the paths this layer
//     whites out are noted, so that a directory it then makes there does not merge with the
//     lower one, and takes nothing from it.
//   - A directory the layer only implies (`a/b` with no `a/` entry) keeps what the layers below
//     give it ("Changeset over existing files"), unless a whiteout or an opaque directory of this
//     layer hides that.
//   - A whiteout that hides nothing is listed by overlayfs, in a directory that does not merge,
//     as a name that cannot be opened (`c?????????` in `ls -l`): under an opaque directory of
//     the layer it hides nothing for sure and goes at once; the others go once the layers below
//     show they hide nothing.
import * as fs from 'node:fs';
import type { FromBelow } from '../overlay/inherit.js';
import { lstatOrUndefined } from '../overlay/walk.js';
import { isWhiteout } from '../overlay/whiteouts.js';
import type { PathResolver } from './unpack-paths.js';

export class MergeNotes {
  /** Paths this layer whites out: their lower entry is gone (and gives an implied directory nothing). */
  readonly deletedBelow = new Set<string>();
  /** Directories this layer made opaque (a `.wh..wh..opq`, or a directory over what hid the lower one). */
  readonly opaqueDirs = new Set<string>();
  /** Directories made for an entry below them, with no entry of their own (yet). */
  readonly implied = new Set<string>();
  /** The whiteouts (0/0 devices) this layer made, where no symlink of the layer was on the way. */
  readonly whiteouts = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly paths: PathResolver,
  ) {}

  /** Whether a directory of this layer above `rel` (the root included) hides what is below. */
  underOpaque(rel: string): boolean {
    if (this.opaqueDirs.has('')) return true;
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      if (this.opaqueDirs.has(rel.slice(0, i))) return true;
    }
    return false;
  }

  /** The directory `rel` and all below it are gone (a non-directory replaced it). */
  forget(rel: string): void {
    const below = `${rel}/`;
    for (const set of [this.implied, this.whiteouts, this.opaqueDirs, this.deletedBelow]) {
      set.delete(rel);
      for (const k of set) if (k.startsWith(below)) set.delete(k);
    }
  }

  /**
   * At the end of the layer: removes the whiteouts that hide nothing for sure (before the
   * directories' times are set: a removal changes its directory's), and says what the layers
   * below must complete.
   */
  finish(): FromBelow {
    const whiteouts: string[] = [];
    for (const rel of this.whiteouts) {
      if (this.paths.crossesSymlink(rel)) continue; // its directory was replaced by a symlink
      const path = `${this.dir}/${rel}`;
      const st = lstatOrUndefined(path);
      if (!st || !isWhiteout(st)) continue; // replaced by a later entry
      if (this.underOpaque(rel)) fs.unlinkSync(path);
      else whiteouts.push(rel);
    }
    return {
      implied: [...this.implied].filter((rel) => this.inheritsFromBelow(rel)).sort(),
      opaqueRoot: this.opaqueDirs.has(''),
      whiteouts: whiteouts.sort(),
    };
  }

  /**
   * Whether the implied directory `rel` takes its attributes from the layers below: it is still
   * a directory (not replaced later in the tar), its own lower entry was not whited out, and no
   * directory above it hides what is below.
   */
  private inheritsFromBelow(rel: string): boolean {
    if (this.deletedBelow.has(rel) || this.underOpaque(rel) || this.paths.crossesSymlink(rel)) return false;
    return lstatOrUndefined(`${this.dir}/${rel}`)?.isDirectory() === true;
  }
}
