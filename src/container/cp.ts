// `tsrun cp` (docker cp): files and directories between a container and the host, both ways,
// running or stopped, with docker's rules for what the destination becomes; and a container
// path as a tar on stdout (`cp CONTAINER:PATH -`) or a tar on stdin into it (`cp - CONTAINER:DIR`).
//
// Safety: a container path is resolved by the kernel inside the container's root
// (openat2 RESOLVE_IN_ROOT, see export.ts), so `/trap -> /etc` means the container's /etc,
// and `../../..` stops at its `/`. Below the resolved entry, trees are copied one directory fd
// at a time with O_NOFOLLOW/O_EXCL: a symlink in the container is copied as a symlink, never
// followed, and a file is never created through one, even if the container swaps names
// while we copy. Host paths are the user's own and resolve as usual.
import * as fs from 'node:fs';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { basename as posixBasename, dirname as posixDirname } from 'node:path/posix';
import type { Readable, Writable } from 'node:stream';
import { TsrunError, errnoOf } from '../errors.js';
import { decompressSniffed } from '../image/compression.js';
import { extract, feed, gidOf, mtimeOf, uidOf, xattrsOf, type Entry, type Header } from '../image/tar.js';
import { cleanPath } from '../image/unpack-paths.js';
import { toContainerIds, toHostIds, type Ids } from '../namespaces/userns-files.js';
import * as libc from '../sys/libc.js';
import { writeTar } from '../overlay/tar-writer.js';
import { devNumbers, fdPath, lstatOrUndefined, openDir, walk } from '../overlay/walk.js';
import { applyXattrs, carriedXattrs, carriesXattr } from '../overlay/xattrs.js';
import { cleanInRoot, failure, openInRoot, withContainerRoot, type RootView } from './export.js';
import type { Found } from './lookup.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

export interface CopyOptions {
  /** -a: keep the source's owners (default: root in the container, the caller on the host). */
  archive: boolean;
  /** -L: follow a symlink named as the source. */
  followLink: boolean;
}

export type Endpoint = { container: Found; path: string } | { host: string };

export interface CopyResult {
  /** Bytes of regular files copied. */
  bytes: number;
}

/** One side of a copy: how to find a path's parent directory and the path itself. */
interface Side {
  /** The directory holding `p`'s last component, as an O_PATH fd. */
  parent(p: string): number;
  /** `p` itself, following a symlink at its end, as an O_PATH fd. */
  follow(p: string): number;
  /** The last component (`''` for the root). */
  base(p: string): string;
  notFound(p: string): TsrunError;
}

function containerSide(rootFd: number, name: string): Side {
  return {
    parent: (p) => openInRoot(rootFd, cleanInRoot(dirname(`/${cleanInRoot(p)}`)), libc.O_PATH | O_DIRECTORY),
    follow: (p) => openInRoot(rootFd, cleanInRoot(p), libc.O_PATH),
    base: (p) => basename(`/${cleanInRoot(p)}`),
    notFound: (p) => new TsrunError('ENOCONTAINER', `Could not find the file ${p} in container ${name}`),
  };
}

const hostSide: Side = {
  parent: (p) => fs.openSync(dirname(resolvePath(p)), libc.O_PATH | O_DIRECTORY | libc.O_CLOEXEC),
  follow: (p) => fs.openSync(resolvePath(p), libc.O_PATH | libc.O_CLOEXEC),
  base: (p) => basename(resolvePath(p)),
  notFound: (p) => new TsrunError('EINVAL_FLAG', `lstat ${resolvePath(p)}: no such file or directory`),
};

/** A located entry: `path` is an fd path; `follow`: it is the fd itself (a magic link to follow). */
interface Loc {
  path: string;
  follow: boolean;
}

/** The owner a copied entry gets, from its source's (see CopyOptions.archive). */
type Owner = (source: Ids) => Ids;

export async function copy(src: Endpoint, dst: Endpoint, opts: CopyOptions): Promise<CopyResult> {
  try {
    return await copyBetween(src, dst, opts);
  } catch (err) {
    throw failure(err, `copying ${describe(src)} to ${describe(dst)}`);
  }
}

async function copyBetween(src: Endpoint, dst: Endpoint, opts: CopyOptions): Promise<CopyResult> {
  if ('container' in src && 'container' in dst) throw new TsrunError('EINVAL_FLAG', 'copying between containers is not supported');
  if ('host' in src && 'host' in dst) throw new TsrunError('EINVAL_FLAG', 'must specify at least one container source');
  if ('container' in src) {
    const c = src.container;
    return withContainerRoot(c, 'read', async (view) => {
      const caller = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      const owner: Owner = opts.archive ? (ids) => toContainerIds(view.ids, ids) : () => caller;
      return new Copier(owner).run(containerSide(view.fd, c.record.name), src.path, hostSide, (dst as { host: string }).host, opts);
    });
  }
  const target = dst as { container: Found; path: string };
  return withContainerRoot(target.container, 'write', async (view) =>
    new Copier(intoContainer(view, opts.archive)).run(hostSide, src.host, containerSide(view.fd, target.container.record.name), target.path, opts),
  );
}

/** docker: what is copied into a container belongs to its root, or with -a keeps its ids. */
function intoContainer(view: RootView, archive: boolean): Owner {
  return archive ? (ids) => toHostIds(view.ids, ids) : () => toHostIds(view.ids, { uid: 0, gid: 0 });
}

/** `tsrun cp CONTAINER:PATH -`: the entry as a tar on `out` (docker's format for `-`). */
export async function copyToStream(found: Found, path: string, out: Writable, opts: Pick<CopyOptions, 'followLink'>): Promise<void> {
  await withContainerRoot(found, 'read', async (view) => {
    const side = containerSide(view.fd, found.record.name);
    const { loc, st, close } = locateSource(side, path, opts.followLink);
    try {
      const name = side.base(path) || '.';
      await writeTar(out, async (w) => {
        await w.add({ rel: name, path: loc.path, st, followed: loc.follow }, name);
        if (!st.isDirectory()) return;
        const dir = fs.openSync(loc.path, O_RDONLY | O_DIRECTORY | libc.O_CLOEXEC | (loc.follow ? 0 : O_NOFOLLOW));
        try {
          await walk(dir, name, async (e) => {
            await w.add(e, e.rel);
            return true;
          });
        } finally {
          fs.closeSync(dir);
        }
      }, view.ids && ((onDisk) => toContainerIds(view.ids, onDisk)));
    } finally {
      close();
    }
  }).catch((err: unknown) => {
    throw failure(err, `copying ${found.record.name}:${path}`);
  });
}

function describe(e: Endpoint): string {
  return 'host' in e ? e.host : `${e.container.record.name}:${e.path}`;
}

/** What a cp path says beyond its name: `dir/` (must be a directory), `dir/.` (its contents). */
export function pathIntent(p: string): { trailingSlash: boolean; contents: boolean } {
  return { trailingSlash: p.endsWith('/'), contents: p === '.' || p.endsWith('/.') };
}

function locateSource(side: Side, p: string, followLink: boolean): { loc: Loc; st: fs.Stats; close: () => void } {
  const intent = pathIntent(p);
  const follow = followLink || intent.trailingSlash || intent.contents || side.base(p) === '';
  let fd: number;
  try {
    fd = follow ? side.follow(p) : side.parent(p);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') throw side.notFound(p);
    throw err;
  }
  const loc = follow ? { path: fdPath(fd), follow: true } : { path: fdPath(fd, side.base(p)), follow: false };
  const st = follow ? fs.statSync(loc.path) : lstatOrUndefined(loc.path);
  if (!st) {
    fs.closeSync(fd);
    throw side.notFound(p);
  }
  if ((intent.trailingSlash || intent.contents) && !st.isDirectory()) {
    fs.closeSync(fd);
    throw new TsrunError('EINVAL_FLAG', `${p}: not a directory`);
  }
  return { loc, st, close: () => fs.closeSync(fd) };
}

/**
 * Copies a tree as docker cp's tar would: owners (see Owner), modes, times, file capabilities and
 * user attributes, and files hard-linked to each other in the source are hard-linked in the copy.
 */
class Copier {
  bytes = 0;
  /** The destination directory the copy goes into, while it runs (an fd). */
  private top = -1;
  /** A source inode with more than one link → where its first copy went, relative to `top`. */
  private readonly links = new Map<string, string>();

  constructor(private readonly owner: Owner) {}

  /** docker cp's rules for the destination (docs.docker.com, "docker container cp"). */
  run(srcSide: Side, srcPath: string, dstSide: Side, dstPath: string, opts: CopyOptions): CopyResult {
    const src = locateSource(srcSide, srcPath, opts.followLink);
    try {
      const srcName = srcSide.base(srcPath);
      const contents = pathIntent(srcPath).contents || srcName === '';
      const dstIntent = pathIntent(dstPath);
      let existing: number | undefined;
      try {
        existing = dstSide.follow(dstPath);
      } catch (err) {
        if (errnoOf(err) === 'ENOTDIR') throw new TsrunError('EINVAL_FLAG', `${dstPath}: not a directory`);
        if (errnoOf(err) !== 'ENOENT') throw err;
      }
      if (existing !== undefined && fs.fstatSync(existing).isDirectory()) {
        // An existing directory: the source goes into it (its contents, for `src/.`).
        try {
          this.inDir(fdPath(existing), (d) => {
            if (src.st.isDirectory() && contents) this.merge(src.loc, src.st, d, '', false);
            else this.entry(src.loc, src.st, d, '', srcName);
          });
        } finally {
          fs.closeSync(existing);
        }
        return { bytes: this.bytes };
      }
      if (existing !== undefined) fs.closeSync(existing);
      if (existing !== undefined && src.st.isDirectory()) throw new TsrunError('EINVAL_FLAG', `cannot copy a directory to a file: ${dstPath}`);
      if (dstIntent.trailingSlash) {
        throw new TsrunError('EINVAL_FLAG', existing !== undefined ? `${dstPath}: not a directory` : `destination directory ${dstPath} does not exist`);
      }
      // A file replaces the destination; a directory is created there. Its parent must exist.
      let parent: number;
      try {
        parent = dstSide.parent(dstPath);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') throw dstSide.notFound(dirname(dstPath));
        throw err;
      }
      try {
        this.inDir(fdPath(parent), (d) => this.entry(src.loc, src.st, d, '', dstSide.base(dstPath)));
      } finally {
        fs.closeSync(parent);
      }
      return { bytes: this.bytes };
    } finally {
      src.close();
    }
  }

  /** Opens the directory an O_PATH fd holds (its /proc path, already resolved safely). */
  private inDir(path: string, fn: (dirFd: number) => void): void {
    const d = fs.openSync(path, O_RDONLY | O_DIRECTORY | libc.O_CLOEXEC);
    this.top = d;
    try {
      fn(d);
    } finally {
      this.top = -1;
      fs.closeSync(d);
    }
  }

  /**
   * Copies `src` to `name` in the directory `dirFd` (`dirRel` below `top`), replacing a
   * non-directory there.
   */
  private entry(src: Loc, st: fs.Stats, dirFd: number, dirRel: string, name: string): void {
    const dst = fdPath(dirFd, name);
    const rel = dirRel === '' ? name : `${dirRel}/${name}`;
    const there = lstatOrUndefined(dst);
    if (st.isDirectory()) {
      if (there && !there.isDirectory()) throw new TsrunError('EINVAL_FLAG', `cannot overwrite non-directory "${name}" with directory`);
      if (!there) fs.mkdirSync(dst, 0o700);
      const d = openDir(dst);
      try {
        this.merge(src, st, d, rel, !there);
      } finally {
        fs.closeSync(d);
      }
      return;
    }
    if (there?.isDirectory()) throw new TsrunError('EINVAL_FLAG', `cannot overwrite directory "${name}" with non-directory`);
    if (there) fs.unlinkSync(dst);
    if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? this.links.get(key) : undefined;
      if (first !== undefined && this.linkTo(first, dst)) return;
      const s = fs.openSync(src.path, O_RDONLY | libc.O_CLOEXEC | (src.follow ? 0 : O_NOFOLLOW));
      let xattrs: Array<[string, Buffer]>;
      try {
        if (!fs.fstatSync(s).isFile()) throw new TsrunError('ESTATE', `${name} changed while being copied`);
        // COPYFILE_EXCL: O_CREAT|O_EXCL, which never follows a symlink planted meanwhile.
        fs.copyFileSync(fdPath(s), dst, fs.constants.COPYFILE_EXCL);
        xattrs = carriedXattrs(s);
      } finally {
        fs.closeSync(s);
      }
      const d = fs.openSync(dst, O_RDONLY | O_NOFOLLOW | libc.O_CLOEXEC);
      try {
        setMeta(d, this.metaOf(st, xattrs));
      } finally {
        fs.closeSync(d);
      }
      this.bytes += st.size;
      if (st.nlink > 1 && first === undefined) this.links.set(key, rel);
    } else if (st.isSymbolicLink()) {
      makeSymlink(dst, fs.readlinkSync(src.path), this.metaOf(st));
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const { major, minor } = devNumbers(st.rdev);
      makeNode(dst, st.mode & 0o170000, major, minor, this.metaOf(st));
    }
    // Sockets are not copied (docker's tar skips them too).
  }

  /**
   * Copies the children of the directory `src` into `dirFd`, then (for a directory the copy
   * created) its owner, mode and times. An existing directory keeps its own: copying into
   * /tmp must not make it 0755.
   */
  private merge(src: Loc, st: fs.Stats, dirFd: number, rel: string, created: boolean): void {
    const s = fs.openSync(src.path, O_RDONLY | O_DIRECTORY | libc.O_CLOEXEC | (src.follow ? 0 : O_NOFOLLOW));
    try {
      for (const name of fs.readdirSync(fdPath(s)).sort()) {
        const path = fdPath(s, name);
        const child = lstatOrUndefined(path);
        if (child) this.entry({ path, follow: false }, child, dirFd, rel, name);
      }
      if (created) setMeta(dirFd, this.metaOf(st, carriedXattrs(s)));
    } finally {
      fs.closeSync(s);
    }
  }

  /**
   * Hard-links `dst` to the earlier copy at `firstRel` (below `top`, looked up with no symlink
   * followed). False when it cannot be (gone, another file system, too many links): the caller
   * copies the file instead, as a tar extractor would end up with a separate file.
   */
  private linkTo(firstRel: string, dst: string): boolean {
    let dir: number;
    try {
      const resolve = libc.RESOLVE_BENEATH | libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_NO_MAGICLINKS;
      dir = libc.openat2(this.top, posixDirname(firstRel), libc.O_PATH | O_DIRECTORY | libc.O_CLOEXEC, resolve);
    } catch {
      return false;
    }
    try {
      fs.linkSync(fdPath(dir, posixBasename(firstRel)), dst);
      return true;
    } catch (err) {
      if (['ENOENT', 'EXDEV', 'EMLINK', 'EPERM', 'ENOTDIR'].includes(errnoOf(err) ?? '')) return false;
      throw err;
    } finally {
      fs.closeSync(dir);
    }
  }

  private metaOf(st: fs.Stats, xattrs: Array<[string, Buffer]> = []): Meta {
    return { owner: this.owner(st), mode: st.mode & 0o7777, atime: st.atime, mtime: st.mtime, xattrs };
  }
}

/** What cp gives an entry it makes. */
interface Meta {
  owner: Ids;
  /** The low 12 bits of st_mode. */
  mode: number;
  atime: Date | number;
  mtime: Date | number;
  xattrs: Array<[string, Buffer]>;
}

/** Owner, then mode (chown clears set-id bits), then the xattrs (chown drops file capabilities), then times. */
function setMeta(fd: number, m: Meta): void {
  fs.fchownSync(fd, m.owner.uid, m.owner.gid);
  fs.fchmodSync(fd, m.mode);
  applyXattrs(fd, m.xattrs);
  fs.futimesSync(fd, m.atime, m.mtime);
}

/** A symlink with its owner and times (a symlink has no mode, and keeps no carried xattrs). */
function makeSymlink(dst: string, target: string, m: Meta): void {
  fs.symlinkSync(target, dst);
  fs.lchownSync(dst, m.owner.uid, m.owner.gid);
  fs.lutimesSync(dst, m.atime, m.mtime);
}

/**
 * A device node or FIFO (`type`: S_IFCHR, S_IFBLK, S_IFIFO). Its owner, mode and times are set
 * through an O_PATH fd, whose /proc path is a magic link to exactly this node: opening a device
 * could have effects.
 */
function makeNode(dst: string, type: number, major: number, minor: number, m: Meta): void {
  libc.mknod(dst, type | 0o600, major, minor);
  const p = fs.openSync(dst, libc.O_PATH | O_NOFOLLOW | libc.O_CLOEXEC);
  try {
    fs.chownSync(fdPath(p), m.owner.uid, m.owner.gid);
    fs.chmodSync(fdPath(p), m.mode);
    fs.utimesSync(fdPath(p), m.atime, m.mtime);
  } finally {
    fs.closeSync(p);
  }
}

// ---- cp - CONTAINER:DIR ------------------------------------------------------------------------

/**
 * `tsrun cp - CONTAINER:DIR`: the tar (plain, gzip or zstd) read from `input`, extracted into
 * DIR, which must be a directory in the container (docker's rule). Each entry's parent is
 * resolved by the kernel inside the container's root (openat2 RESOLVE_IN_ROOT: docker extracts
 * chrooted into it), and the entry is made there with O_EXCL/O_NOFOLLOW, so no symlink — the
 * container's, or one the tar made a moment ago — leads out of the container. Owners become the
 * container root's unless `archive` keeps the tar's.
 */
export async function copyFromStream(found: Found, path: string, input: Readable, opts: Pick<CopyOptions, 'archive'>): Promise<CopyResult> {
  const where = `${found.record.name}:${path}`;
  try {
    return await withContainerRoot(found, 'write', async (view) => {
      const dest = cleanInRoot(path);
      let fd: number;
      try {
        fd = openInRoot(view.fd, dest, libc.O_PATH | O_DIRECTORY);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT') throw containerSide(view.fd, found.record.name).notFound(path);
        if (errnoOf(err) === 'ENOTDIR') throw new TsrunError('EINVAL_FLAG', `extraction point ${path} is not a directory`);
        throw err;
      }
      fs.closeSync(fd);
      const { stream } = await decompressSniffed(input, 'stdin');
      return new TarExtractor(view.fd, dest, intoContainer(view, opts.archive)).run(stream);
    });
  } catch (err) {
    throw failure(err, `copying a tar from stdin to ${where}`);
  }
}

class TarExtractor {
  private bytes = 0;
  /** Directories the tar made: their mode and times are set once everything is in them. */
  private readonly made: Array<{ rel: string; header: Header }> = [];

  constructor(
    private readonly root: number,
    private readonly dest: string,
    private readonly owner: Owner,
  ) {}

  async run(tar: Readable): Promise<CopyResult> {
    const ex = extract();
    const fed = feed(tar, ex);
    try {
      for await (const entry of ex) await this.entry(entry);
    } catch (err) {
      if (!ex.destroyed) ex.destroy();
      throw (await fed) ?? err;
    }
    const failed = await fed;
    if (failed) throw failed;
    // Deepest first: setting a parent's times before its children would be undone by them.
    for (const { rel, header } of this.made.sort((a, b) => b.rel.length - a.rel.length)) {
      const d = openInRoot(this.root, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        setMeta(d, this.metaOf(header));
      } finally {
        fs.closeSync(d);
      }
    }
    return { bytes: this.bytes };
  }

  /** `a/b` of the tar → `DIR/a/b` in the container; a name that climbs above DIR is refused. */
  private place(name: string): string {
    let rel: string;
    try {
      rel = cleanPath(name);
    } catch {
      throw new TsrunError('EUNSAFE', `the tar's entry "${name}" climbs out of the destination with ".."`);
    }
    return rel === '' ? this.dest : this.dest === '' ? rel : `${this.dest}/${rel}`;
  }

  private async entry(entry: Entry): Promise<void> {
    const { header } = entry;
    const rel = this.place(header.name);
    if (rel === this.dest) {
      // `./`: the destination itself, which keeps its own owner and mode. As anything but a
      // directory (a symlink to elsewhere, a file) it is refused, as a layer's root entry is.
      entry.resume();
      if (header.type !== 'directory') {
        throw new TsrunError('EUNSAFE', `the tar's entry "${header.name}" (${header.type ?? 'unknown type'}) names the destination directory itself; only a directory entry may`);
      }
      return;
    }
    const parent = this.parentOf(rel);
    try {
      const dst = fdPath(parent, posixBasename(rel));
      const there = lstatOrUndefined(dst);
      if (header.type === 'directory') {
        entry.resume();
        if (there?.isDirectory()) return;
        if (there) fs.unlinkSync(dst);
        fs.mkdirSync(dst, 0o700);
        this.made.push({ rel, header });
        return;
      }
      if (there?.isDirectory()) throw new TsrunError('EINVAL_FLAG', `cannot overwrite directory "${rel}" with non-directory`);
      if (there) fs.unlinkSync(dst);
      switch (header.type) {
        case 'file':
        case 'contiguous-file':
          await this.file(entry, dst);
          return;
        case 'link':
          entry.resume();
          this.hardlink(header, dst);
          return;
        case 'symlink':
          entry.resume();
          makeSymlink(dst, header.linkname ?? '', this.metaOf(header));
          return;
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          entry.resume();
          const type = header.type === 'fifo' ? fs.constants.S_IFIFO : header.type === 'block-device' ? fs.constants.S_IFBLK : fs.constants.S_IFCHR;
          makeNode(dst, type, header.devmajor, header.devminor, this.metaOf(header));
          return;
        }
        default:
          entry.resume(); // GNU tar's other types carry nothing to make
      }
    } finally {
      fs.closeSync(parent);
    }
  }

  /**
   * The directory that will hold `rel`, as an O_PATH fd. Parents the tar did not list are made
   * (0755, as docker makes them), one at a time inside the root.
   */
  private parentOf(rel: string): number {
    const dir = posixDirname(rel) === '.' ? '' : posixDirname(rel);
    try {
      return openInRoot(this.root, dir, libc.O_PATH | O_DIRECTORY);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
    let made = this.dest;
    for (const part of dir.slice(this.dest === '' ? 0 : this.dest.length + 1).split('/')) {
      const up = openInRoot(this.root, made, libc.O_PATH | O_DIRECTORY);
      try {
        fs.mkdirSync(fdPath(up, part), 0o755);
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
      } finally {
        fs.closeSync(up);
      }
      made = made === '' ? part : `${made}/${part}`;
    }
    return openInRoot(this.root, dir, libc.O_PATH | O_DIRECTORY);
  }

  private async file(entry: Entry, dst: string): Promise<void> {
    const fd = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW | libc.O_CLOEXEC, 0o600);
    try {
      for await (const chunk of entry) {
        fs.writeSync(fd, chunk);
        this.bytes += chunk.length;
      }
      setMeta(fd, this.metaOf(entry.header));
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A link to an earlier entry: its target is found inside the container's root too. */
  private hardlink(header: Header, dst: string): void {
    const target = this.place(header.linkname ?? '');
    const dir = openInRoot(this.root, posixDirname(target) === '.' ? '' : posixDirname(target), libc.O_PATH | O_DIRECTORY);
    try {
      fs.linkSync(fdPath(dir, posixBasename(target)), dst);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new TsrunError('EINVAL_FLAG', `the tar's hard link ${header.name} points to ${header.linkname}, which is not there`);
      throw err;
    } finally {
      fs.closeSync(dir);
    }
  }

  private metaOf(header: Header): Meta {
    const t = mtimeOf(header);
    return {
      owner: this.owner({ uid: uidOf(header), gid: gidOf(header) }),
      mode: header.mode & 0o7777,
      atime: t,
      mtime: t,
      xattrs: xattrsOf(header).filter(([name]) => carriesXattr(name)),
    };
  }
}
