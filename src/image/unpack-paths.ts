// Where a tar entry may be written, and how to reach it without leaving the layer.
//
// Fast path (nearly every entry): no ancestor of the entry is a symlink this layer made, and
// nothing else can have put one there (fresh 0700 directory), so `<dir>/<rel>` resolves
// inside the layer and plain `fs` calls are safe. Slow path: an ancestor is such a symlink;
// the kernel resolves the parent with openat2(RESOLVE_IN_ROOT), which confines `..` and
// absolute targets to the layer, and we act on `/proc/self/fd/<fd>/<name>` — the directory
// that fd holds, whatever path led there.
import * as fs from 'node:fs';
import { TsrunError, errnoOf } from '../errors.js';
// libc.ts loads koffi on its first call, so only the rare symlink-crossing entry pays for FFI.
import * as libc from '../sys/libc.js';

/**
 * The layer-relative form of a tar name: `''` for the root, never absolute, no `.` or `..`
 * left. A leading `/` or `./` is dropped (docker, GNU tar); `a/../b` is `b`; a `..` that climbs
 * above the root is EUNSAFE — refusing beats guessing what a crafted layer meant.
 */
export function cleanPath(name: string): string {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new TsrunError('EUNSAFE', `path "${name}" climbs out of the layer with ".."`);
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

export interface Placed {
  /** A path whose parent is confined to the layer; the last component is not followed yet. */
  path: string;
  release(): void;
}

const noop = (): void => {};
/** An empty, `.` or `..` component. */
const UNCLEAN = /(^|\/)\.{0,2}(\/|$)/;

export class PathResolver {
  private readonly symlinks = new Set<string>();
  private rootFd = -1;

  constructor(private readonly dir: string) {}

  addSymlink(rel: string): void {
    this.symlinks.add(rel);
  }

  removeSymlink(rel: string): void {
    this.symlinks.delete(rel);
  }

  /** The directory `rel` was removed: the symlinks it held are gone with it. */
  forgetBelow(rel: string): void {
    for (const s of this.symlinks) if (s.startsWith(`${rel}/`)) this.symlinks.delete(s);
  }

  /** True when some ancestor of `rel` is a symlink this layer created. */
  crossesSymlink(rel: string): boolean {
    if (this.symlinks.size === 0) return false;
    for (let i = rel.indexOf('/'); i >= 0; i = rel.indexOf('/', i + 1)) {
      if (this.symlinks.has(rel.slice(0, i))) return true;
    }
    return false;
  }

  /** Where to create or act on `rel`. With `create`, missing parents are made (mode 0755). */
  place(rel: string, create = false): Placed {
    if (rel === '') return { path: this.dir, release: noop };
    // Every caller passes a cleanPath() result; a `.` or `..` here would be a path out of the
    // layer (`<dir>/..` is the store), so make sure rather than trust.
    if (UNCLEAN.test(rel)) throw new TsrunError('EUNSAFE', `path "${rel}" is not a clean path inside the layer`);
    if (!this.crossesSymlink(rel)) return { path: `${this.dir}/${rel}`, release: noop };
    const slash = rel.lastIndexOf('/');
    const fd = this.openParent(rel.slice(0, slash), create);
    return { path: `/proc/self/fd/${fd}/${rel.slice(slash + 1)}`, release: () => libc.close(fd) };
  }

  /**
   * `mkdir -p` of the parent of `rel`, a path that crosses a symlink of this layer, each
   * directory made inside what the kernel resolved (the Unpacker makes the others itself).
   */
  mkdirParents(rel: string): void {
    const slash = rel.lastIndexOf('/');
    if (slash < 0) return;
    libc.close(this.openParent(rel.slice(0, slash), true));
  }

  close(): void {
    if (this.rootFd >= 0) fs.closeSync(this.rootFd);
    this.rootFd = -1;
  }

  /**
   * An O_PATH fd on directory `rel`, resolved by the kernel with the layer as `/`. It comes from
   * libc, not from `fs`, so libc closes it too: in a worker thread Node tracks the fds `fs`
   * opened, and warns about closing one it did not.
   */
  private openParent(rel: string, create: boolean): number {
    if (this.rootFd < 0) this.rootFd = fs.openSync(this.dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    const open = (p: string): number =>
      libc.openat2(this.rootFd, p, libc.O_PATH | libc.O_DIRECTORY | libc.O_CLOEXEC, libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS);
    try {
      return open(rel);
    } catch (err) {
      if (!create || errnoOf(err) !== 'ENOENT') throw err;
    }
    // Some directory on the way is missing: walk down, creating each one inside the
    // directory the kernel resolved for its parent.
    const parts = rel.split('/');
    let fd = open('.');
    try {
      for (let i = 0; i < parts.length; i++) {
        const prefix = parts.slice(0, i + 1).join('/');
        let next: number;
        try {
          next = open(prefix);
        } catch (err) {
          if (errnoOf(err) !== 'ENOENT') throw err;
          try {
            fs.mkdirSync(`/proc/self/fd/${fd}/${parts[i]}`, 0o755);
          } catch (mkErr) {
            if (errnoOf(mkErr) === 'EEXIST') {
              // A symlink to a directory this layer does not have (`a -> /etc`, no etc/): we
              // will not write through it, and docker fails here too.
              throw new TsrunError('EUNSAFE', `path "${prefix}" is a symlink to a directory that is not in this layer; refusing to write through it`);
            }
            throw mkErr;
          }
          next = open(prefix);
        }
        libc.close(fd);
        fd = next;
      }
      return fd;
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }
}
