// COPY and ADD of files from the context, a heredoc or a URL, straight into a layer: the step's
// tar is written with its names already resolved against the image (what `cp -` into a
// container would do through the kernel), then stored as a layer by the safe unpack — no
// container, no copy into an upper dir and back out of it. (Archives and --from still go
// through a container: copy.ts.)
//
// What "resolved against the image" means, as the extractor into a container's root does it:
//   - a parent directory that is a symlink in the image is followed, inside the image's root
//     (`COPY x /usr/lib/` with /usr/lib -> lib lands in /lib; ../ stops at /);
//   - a directory the image already has keeps its owner, mode and times: its entry is left out,
//     and the unpacker gives such implied directories the attributes of the one below;
//   - a file over a directory is refused (`cannot overwrite directory`), as cp refuses it.
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { removeTree } from '../image/fsutil.js';
import { storeLayerStream, type StoredLayer } from '../image/layer-tar.js';
import type { ImageStore } from '../image/store.js';
import { pack as tarPack, type PackHeader } from '../image/tar.js';
import type { Digest } from '../image/types.js';
import type { LowerLayers } from '../overlay/lower-layers.js';
import { itemsOf, write, type CopySource, type CopyTarget } from './copy.js';

/** Symlinks followed on one path before giving up (the kernel's limit). */
const MAX_HOPS = 40;

export async function copyAsLayer(
  store: ImageStore,
  lowers: LowerLayers,
  parentDiffIds: Digest[],
  copy: { sources: CopySource[]; target: CopyTarget; destDir: boolean },
  created: { layers: Digest[]; blobs: Digest[] },
): Promise<StoredLayer> {
  const tmp = await store.makeTempDir('copy');
  try {
    const pack = tarPack();
    const source = Readable.from(pack);
    const paths = new ImagePaths(lowers);
    const writing = (async () => {
      try {
        for await (const item of itemsOf(copy.sources, copy.target, copy.destDir)) {
          const header = paths.place(item.header);
          if (header) await write(pack, { ...item, header });
        }
        pack.finalize();
      } catch (err) {
        source.destroy(err as Error);
        throw err;
      }
    })();
    const [made, stored] = await Promise.allSettled([writing, storeLayerStream(store, source, parentDiffIds, tmp, created)]);
    if (made.status === 'rejected') throw made.reason;
    if (stored.status === 'rejected') throw stored.reason;
    return stored.value;
  } finally {
    await removeTree(tmp).catch(() => {});
  }
}

/** Names in the image, as they resolve in the merged layers plus what this step adds. */
export class ImagePaths {
  /** A directory path as written → where it is (symlinks in it followed). */
  private readonly dirs = new Map<string, string>();
  /** Symlinks this step makes: later entries under them go where they point, as in a container. */
  private readonly links = new Map<string, string>();
  /** Entry names as written → as placed (hard links name the placed one). */
  private readonly placed = new Map<string, string>();
  /** Directories this step makes. */
  private readonly made = new Set<string>();

  constructor(private readonly lowers: LowerLayers) {}

  /** The header with its name resolved, or undefined when the image already has that directory. */
  place(header: PackHeader): PackHeader | undefined {
    const written = header.name.replace(/\/+$/, '');
    const rel = this.resolve(written);
    const there = this.lowers.find(rel)?.st;
    this.placed.set(written, rel);
    if (header.type === 'directory') {
      if (there?.isDirectory() || this.made.has(rel) || (rel === '' && there === undefined)) return undefined;
      // A symlink to a directory stays, and what goes in the directory goes where it points
      // (docker copies into the image's /lib -> usr/lib, it does not replace the link).
      if (there?.isSymbolicLink() && this.isDir(this.dir(written, 0))) return undefined;
      this.made.add(rel);
      return { ...header, name: `${rel}/` };
    }
    if (there?.isDirectory()) throw new TsrunError('EBUILD', `cannot overwrite directory "/${rel}" with non-directory`);
    if (header.type === 'symlink') this.links.set(rel, header.linkname ?? '');
    const out: PackHeader = { ...header, name: rel };
    if (header.type === 'link') out.linkname = this.placed.get((header.linkname ?? '').replace(/\/+$/, '')) ?? header.linkname;
    return out;
  }

  private isDir(rel: string): boolean {
    return this.made.has(rel) || (this.lowers.find(rel)?.st.isDirectory() ?? false);
  }

  /** `rel` with every parent directory resolved; the last component itself is not followed. */
  resolve(rel: string): string {
    const slash = rel.lastIndexOf('/');
    if (slash < 0) return rel;
    const parent = this.dir(rel.slice(0, slash), 0);
    const name = rel.slice(slash + 1);
    return parent === '' ? name : `${parent}/${name}`;
  }

  /** Where the directory `rel` is: each component that is a symlink followed, confined to `/`. */
  private dir(rel: string, hops: number): string {
    if (rel === '') return '';
    const cached = this.dirs.get(rel);
    if (cached !== undefined) return cached;
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : this.dir(rel.slice(0, slash), hops);
    const name = rel.slice(slash + 1);
    const here = parent === '' ? name : `${parent}/${name}`;
    let target = this.links.get(here);
    if (target === undefined) {
      const found = this.lowers.find(here);
      if (found?.st.isSymbolicLink()) target = fs.readlinkSync(found.path);
    }
    let out = here;
    if (target !== undefined) {
      if (hops >= MAX_HOPS) throw new TsrunError('EBUILD', `too many levels of symbolic links at /${here}`);
      out = this.dir(confined(target.startsWith('/') ? target : posix.join(parent, target)), hops + 1);
    }
    this.dirs.set(rel, out);
    return out;
  }
}

/** A symlink's target as a path below the image's root: `..` stops at `/`, as in a chroot. */
function confined(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return parts.join('/');
}
