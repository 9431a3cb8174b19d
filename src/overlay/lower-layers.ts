// The image's layers as overlayfs merges them, read from the store without mounting anything:
// whiteouts (0/0 character devices) and opaque directories decide what a lower layer shows.
// Light on purpose (node:fs and, for the opaque attribute, libc): `run` loads it to fill a new
// volume from the image, and must not load what export and commit need (tar-stream). A layer's
// unpack reads it too, for the directories the layer implies (inherit.ts), and diff and commit
// for what an upper dir's entries hide or replace.
import * as fs from 'node:fs';
import { join } from 'node:path';
import { lstatOrUndefined } from './walk.js';
import { isOpaque, isWhiteout } from './whiteouts.js';

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
