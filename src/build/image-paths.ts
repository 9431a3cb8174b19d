// Paths in an image as the kernel would resolve them inside its root, without mounting it:
// symlinks in the merged layers (and those a step is adding) followed, `..` stopped at `/`.
// COPY names its entries with it, and asks it what a destination is.
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { TsrunError } from '../errors.js';
import type { PackHeader } from '../image/tar.js';
import type { LowerLayers } from '../overlay/lower-layers.js';

/** Symlinks followed on one path before giving up (the kernel's limit). */
const MAX_HOPS = 40;

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

  /** `rel` with every component resolved, the last one too (what the kernel opens for it). */
  follow(rel: string): string {
    return this.dir(confined(rel), 0);
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

/** `path` in the merged layers, following symlinks as the kernel would inside the image's root. */
export function statInImage(lowers: LowerLayers, path: string): fs.Stats | undefined {
  let rel: string;
  try {
    rel = new ImagePaths(lowers).follow(path);
  } catch {
    return undefined; // a symlink loop: nothing there to stat
  }
  return lowers.find(rel)?.st;
}
