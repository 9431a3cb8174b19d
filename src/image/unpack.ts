// The safe layer unpacker: a tar stream in, an overlayfs lower directory out.
//
// The rules (DESIGN.md, "Images and storage"):
//   - Nothing is written outside `dir`. A name is cleaned like a path under `/`: a leading
//     `/` or `./` is dropped (docker does the same), `a/../b` is `b`, and a `..` that would
//     climb above the layer root rejects the whole layer (EUNSAFE).
//   - Nothing is written through a symlink. `dir` is fresh and only tsrun can write in it, so
//     the only symlinks on any path are the ones this layer created; we remember them. An
//     entry whose parent path crosses one is rare, and for it the kernel resolves the parent
//     with openat2(RESOLVE_IN_ROOT), which treats `dir` as `/`: `a -> /etc` then `a/passwd`
//     lands in `<dir>/etc/passwd`, as it would inside the container (docker does the same).
//     The last component is never followed (O_NOFOLLOW|O_EXCL, lchown, lutimes, mknod).
//   - A hardlink's target is resolved the same way and must be a file of this layer.
//   - OCI whiteouts become overlayfs ones (both spellings: overlay/whiteouts.ts): `.wh.x` →
//     character device 0/0 `x`, `.wh..wh..opq` → xattr trusted.overlay.opaque=y on the
//     directory. As the image spec says, a whiteout removes only what the layers below have:
//     an `x` of this layer stays, before or after its `.wh.x` in the tar (a directory then
//     becomes opaque, so that nothing of the lower `x` shows through it).
//   - A directory the layer implies (`a/b` with no `a/` entry) keeps the attributes the layers
//     below give it, which only the layer store can apply, once they are in: the result's
//     `fromBelow` says what (unpack-merge.ts, overlay/inherit.ts).
//
// The hot loop is synchronous: TarReader (tar.ts) calls the Unpacker for each entry and each
// piece of its data as the bytes arrive, and the fs calls are the sync ones — per file several
// times cheaper than promises. FFI only runs for devices, whiteouts, xattrs and the rare
// symlink-crossing path. It runs in an unpack worker thread during a pull (unpack-worker.ts).
import * as fs from 'node:fs';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import * as libc from '../sys/libc.js';
import { Hasher } from './digest.js';
import { TarReader, gidOf, mtimeOf, uidOf, xattrsOf, type Header, type TarSink } from './tar.js';
import type { Digest } from './types.js';
import { PathResolver, cleanPath, type Placed } from './unpack-paths.js';
import path from 'node:path';
import { MergeNotes } from './unpack-merge.js';
import type { FromBelow } from '../overlay/inherit.js';
import { lstatOrUndefined } from '../overlay/walk.js';
import { OPAQUE_MARKER, OPAQUE_XATTR, isHostRoot, isOverlayXattr, isWhiteout, makeWhiteout, markOpaque, ociMarker } from '../overlay/whiteouts.js';
import { droppableXattrError } from '../overlay/xattrs.js';

export { cleanPath } from './unpack-paths.js';

export interface UnpackOptions {
  /** Apply the owners recorded in the tar. Default: only when running as root. */
  owners?: boolean;
  /** Xattr that marks an opaque directory: trusted.overlay.opaque as root, else
   * user.overlay.opaque (what overlayfs reads when mounted with `userxattr`). */
  opaqueXattr?: string;
}

export interface UnpackResult {
  /** sha256 of the tar bytes as read: compare with the layer's diff_id. */
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  tarSize: number;
  /** Sum of the regular files' sizes. */
  contentSize: number;
  entries: number;
  /** What only the layers below can complete (inherit.ts): empty for most layers. */
  fromBelow: FromBelow;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;
// Root may set every owner; only the host's root (not tsrun's rootless user namespace, where
// the owners must be mapped ones) may make devices and set trusted.* attributes.
const canChown = process.getuid?.() === 0;
const isRoot = isHostRoot();
const ENVIRONMENT = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EMFILE', 'ENFILE', 'ENOMEM']);

interface DirMeta {
  rel: string;
  mode: number;
  mtime: number;
}

/** Unpacks the tar read from `source` into `dir`, an empty directory only tsrun can write. */
export async function unpackTar(source: AsyncIterable<Uint8Array>, dir: string, options: UnpackOptions = {}): Promise<UnpackResult> {
  const unpacker = new Unpacker(dir, options);
  const reader = new TarReader(unpacker);
  const hasher = new Hasher();
  try {
    for await (const chunk of source) {
      // Every byte is hashed as it is read, including padding after the end-of-archive
      // blocks, so the digest is that of the whole stream, as diff_id requires.
      hasher.update(chunk);
      reader.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
    reader.finish();
    unpacker.finish();
  } catch (err) {
    unpacker.abort();
    throw unpackError(err);
  }
  return { diffId: hasher.digest(), tarSize: hasher.size, contentSize: unpacker.contentSize, entries: unpacker.entries, fromBelow: unpacker.fromBelow };
}

/** What unpackTar throws for a failure of its source, its tar or its writes. */
export function unpackError(err: unknown): TsrunError {
  if (err instanceof TsrunError) return err;
  // A full disk is not a bad image; anything else the tar made us do that failed is.
  return wrap(ENVIRONMENT.has(errnoOf(err) ?? '') ? 'EINTERNAL' : 'EBADIMAGE', 'unpacking layer', err);
}

/** The regular file whose data is arriving. */
interface OpenFile {
  fd: number;
  placed: Placed;
  header: Header;
  what: string;
  rel: string;
}

class Unpacker implements TarSink {
  contentSize = 0;
  entries = 0;
  private readonly paths: PathResolver;
  private readonly owners: boolean;
  private readonly opaqueXattr: string;
  private readonly dirs = new Map<string, DirMeta>();
  private file: OpenFile | undefined;
  private readonly notes: MergeNotes;
  fromBelow: FromBelow = { implied: [], opaqueRoot: false, whiteouts: [] };

  constructor(
    private readonly dir: string,
    options: UnpackOptions,
  ) {
    this.paths = new PathResolver(dir);
    this.notes = new MergeNotes(dir, this.paths);
    this.owners = options.owners ?? canChown;
    this.opaqueXattr = options.opaqueXattr ?? OPAQUE_XATTR;
  }

  entry(header: Header): void {
    this.entries++;
    const rel = cleanPath(header.name);
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    const what = `${header.type ?? 'entry'} ${header.name}`;
    try {
      // The layer root is the directory tsrun made: an entry naming it (`.`, `./`, `/`, or an
      // empty name) may set its owner, mode and times, and nothing else. As a symlink it would
      // send every later entry of the layer to wherever it points.
      if (rel === '' && header.type !== 'directory') throw new TsrunError('EUNSAFE', 'names the layer root itself, which only a directory entry may');
      // overlayfs's own attributes may only come from whiteout conversion: a layer that sets
      // trusted.overlay.redirect or .metacopy could make overlayfs look somewhere else. On
      // any entry, even one whose xattrs are not applied (a device, a whiteout).
      if (header.pax) for (const [name] of xattrsOf(header)) if (isOverlayXattr(name)) throw new TsrunError('EUNSAFE', `sets the overlayfs attribute ${name}`);
      // OCI whiteouts and opaque markers (overlay/whiteouts.ts), whatever their entry's type.
      const marker = ociMarker(base);
      if (marker?.kind === 'opaque') this.opaque(parent);
      else if (marker?.kind === 'aufs') return; // other aufs metadata (.wh..wh.plnk)
      else if (marker?.kind === 'whiteout') this.whiteout(parent, whiteoutTarget(base, marker.name));
      else if (header.type === 'file' || header.type === 'contiguous-file') this.openFile(rel, header, what);
      else if (header.type === 'directory') this.directory(rel, header);
      else if (header.type === 'symlink') this.symlink(rel, header);
      else if (header.type === 'link') this.hardlink(rel, header);
      else if (header.type === 'character-device' || header.type === 'block-device' || header.type === 'fifo') this.device(rel, header);
      else {
        throw new TsrunError('EBADIMAGE', `unsupported tar entry type ${String(header.type)}`);
      }
    } catch (err) {
      throw inEntry(what, err, path.join(this.dir, rel));
    }
  }

  /** The current entry's data: written if it is a regular file, skipped otherwise. */
  data(chunk: Buffer): void {
    const f = this.file;
    if (!f) return;
    try {
      let off = 0;
      while (off < chunk.length) off += fs.writeSync(f.fd, chunk, off);
      this.contentSize += chunk.length;
    } catch (err) {
      throw inEntry(f.what, err, path.join(this.dir, f.rel));
    }
  }

  end(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    try {
      const { fd, header } = f;
      if (this.owners) fs.fchownSync(fd, uidOf(header), gidOf(header));
      fs.fchmodSync(fd, header.mode); // after chown, which clears setuid/setgid
      const xattrs = xattrsOf(header);
      if (xattrs.length > 0) this.setXattrs(xattrs, (name, value) => libc.fsetxattr(fd, name, value));
      const t = mtimeOf(header);
      fs.futimesSync(fd, t, t);
    } catch (err) {
      throw inEntry(f.what, err, path.join(this.dir, f.rel));
    } finally {
      closeFile(f);
    }
  }

  /** Directory modes and mtimes go last: writing inside a directory changes its mtime, and a
   * read-only mode would stop us writing in it. Deepest first. */
  finish(): void {
    this.fromBelow = this.notes.finish();
    const dirs = [...this.dirs.values()].sort((a, b) => b.rel.length - a.rel.length);
    for (const d of dirs) {
      const p = this.paths.place(d.rel);
      try {
        const fd = fs.openSync(p.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        try {
          fs.fchmodSync(fd, d.mode);
          fs.futimesSync(fd, d.mtime, d.mtime);
        } finally {
          fs.closeSync(fd);
        }
      } catch (err) {
        // Replaced by a non-directory later in the same layer: nothing to apply.
        if (errnoOf(err) !== 'ENOTDIR' && errnoOf(err) !== 'ELOOP' && errnoOf(err) !== 'ENOENT') throw err;
      } finally {
        p.release();
      }
    }
    this.paths.close();
  }

  /** After a failure: closes what is open; the caller removes the directory. */
  abort(): void {
    const f = this.file;
    this.file = undefined;
    try {
      if (f) closeFile(f);
    } catch {
      // the error that stopped us is the one to report
    }
    this.paths.close();
  }

  /** Creates a regular file; data() writes it and end() sets its owner, mode, xattrs, times. */
  private openFile(rel: string, header: Header, what: string): void {
    const placed = this.paths.place(rel, true);
    try {
      let fd = -1;
      this.create(placed.path, rel, () => {
        fd = fs.openSync(placed.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      });
      this.file = { fd, placed, header, what, rel };
    } catch (err) {
      placed.release();
      throw err;
    }
  }

  private directory(rel: string, header: Header): void {
    if (rel !== '') {
      const p = this.paths.place(rel, true);
      try {
        let made = false;
        this.create(p.path, rel, () => {
          fs.mkdirSync(p.path, 0o700);
          made = true;
        }, true);
        this.notes.implied.delete(rel); // its attributes are this entry's
        // A directory entry over one the layer already has replaces its attributes, xattrs too.
        if (!made) this.dropXattrs(p.path);
        this.applyOwner(p.path, header);
        const xattrs = xattrsOf(header);
        if (xattrs.length > 0) this.setXattrs(xattrs, (name, value) => libc.lsetxattr(p.path, name, value));
      } finally {
        p.release();
      }
    } else {
      this.applyOwner(this.dir, header);
    }
    this.dirs.set(rel, { rel, mode: header.mode, mtime: mtimeOf(header) });
  }

  private symlink(rel: string, header: Header): void {
    const target = header.linkname ?? '';
    if (target === '') throw new TsrunError('EBADIMAGE', 'symlink without a target');
    const p = this.paths.place(rel, true);
    try {
      this.create(p.path, rel, () => fs.symlinkSync(target, p.path));
      this.paths.addSymlink(rel);
      this.applyOwner(p.path, header);
      const xattrs = xattrsOf(header);
      if (xattrs.length > 0) this.setXattrs(xattrs, (name, value) => libc.lsetxattr(p.path, name, value));
      const t = mtimeOf(header);
      fs.lutimesSync(p.path, t, t);
    } finally {
      p.release();
    }
  }

  private hardlink(rel: string, header: Header): void {
    const targetRel = cleanPath(header.linkname ?? '');
    if (targetRel === '') throw new TsrunError('EUNSAFE', 'hardlink to the layer root');
    let t: Placed | undefined;
    let st: fs.Stats;
    try {
      t = this.paths.place(targetRel);
      st = fs.lstatSync(t.path);
    } catch (err) {
      t?.release();
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') {
        throw new TsrunError('EUNSAFE', `hardlink target ${header.linkname} is not a file of this layer`);
      }
      throw err;
    }
    const p = this.paths.place(rel, true);
    try {
      if (st.isDirectory()) throw new TsrunError('EUNSAFE', `hardlink target ${header.linkname} is a directory`);
      // A whiteout is not a file of the layer: a link to it would white out another name.
      if (isWhiteout(st)) throw new TsrunError('EUNSAFE', `hardlink target ${header.linkname} is a whiteout, not a file of this layer`);
      // link(2) follows a symlink in neither name: linking to a symlink makes a new name for
      // the symlink itself, which we must then remember as one.
      this.create(p.path, rel, () => fs.linkSync(t.path, p.path));
      if (st.isSymbolicLink()) this.paths.addSymlink(rel);
    } finally {
      t.release();
      p.release();
    }
  }

  private device(rel: string, header: Header): void {
    const type = header.type === 'fifo' ? libc.S_IFIFO : header.type === 'block-device' ? libc.S_IFBLK : libc.S_IFCHR;
    // overlayfs reads a 0/0 character device as a whiteout: stored, it would hide the name
    // (and what lower layers have there) instead of being a device.
    if (type === libc.S_IFCHR && header.devmajor === 0 && header.devminor === 0) {
      throw new TsrunError('EBADIMAGE', 'a 0/0 character device, which overlayfs would take for a whiteout');
    }
    const p = this.paths.place(rel, true);
    try {
      try {
        this.create(p.path, rel, () => libc.mknod(p.path, type | 0o600, header.devmajor, header.devminor));
      } catch (err) {
        // Without CAP_MKNOD (rootless) device nodes are skipped, as rootless docker does;
        // a container gets its /dev from the runtime anyway.
        if (!isRoot && errnoOf(err) === 'EPERM') return;
        throw err;
      }
      this.applyOwner(p.path, header);
      fs.chmodSync(p.path, header.mode); // not a symlink: we just made it
      const t = mtimeOf(header);
      fs.lutimesSync(p.path, t, t);
    } finally {
      p.release();
    }
  }

  /**
   * `.wh.<name>`: overlayfs hides a lower `<name>` behind a 0/0 character device. Only a lower
   * one: what this layer has at `<name>`, before or after the whiteout, stays (OCI image spec,
   * "Whiteouts"). A file of this layer hides the lower entry by itself; a directory would merge
   * with it, so it becomes opaque.
   */
  private whiteout(parent: string, name: string): void {
    const rel = parent === '' ? name : `${parent}/${name}`;
    this.notes.deletedBelow.add(rel);
    const p = this.paths.place(rel, true);
    try {
      const there = lstatOrUndefined(p.path);
      if (!there) {
        this.create(p.path, rel, () => makeWhiteout(p.path));
        if (!this.paths.crossesSymlink(rel)) this.notes.whiteouts.add(rel);
      } else if (there.isDirectory()) this.setOpaque(rel, p.path);
    } finally {
      p.release();
    }
  }

  private setOpaque(rel: string, path: string): void {
    markOpaque(path, this.opaqueXattr);
    this.notes.opaqueDirs.add(rel);
  }

  /** `.wh..wh..opq`: the directory hides everything below it in lower layers. */
  private opaque(rel: string): void {
    // The marker's directory is made as any parent is: implied, never over a file of this layer.
    if (rel !== '') this.makeParents(`${rel}/${OPAQUE_MARKER}`);
    const p = this.paths.place(rel);
    try {
      this.setOpaque(rel, p.path);
    } finally {
      p.release();
    }
  }

  /**
   * Runs `make` (which creates `path` without following a final symlink) and, where something
   * is already there, does what tar does: a directory stays a directory (`keepDir`),
   * anything else is removed first. A missing parent is created like `mkdir -p`.
   */
  private create(path: string, rel: string, make: () => void, keepDir = false): void {
    try {
      make();
      return;
    } catch (err) {
      const code = errnoOf(err);
      // A missing parent, or (ENOTDIR) one this layer whited out: made as `mkdir -p` would.
      if (code === 'ENOENT' || (code === 'ENOTDIR' && this.notes.deletedBelow.size > 0)) {
        this.makeParents(rel);
        make();
        return;
      }
      if (code !== 'EEXIST') throw err;
    }
    const st = fs.lstatSync(path);
    if (st.isDirectory()) {
      if (keepDir) return;
      fs.rmSync(path, { recursive: true });
      this.forget(rel);
    } else {
      fs.unlinkSync(path);
      if (st.isSymbolicLink()) this.paths.removeSymlink(rel);
    }
    make();
    // A directory where this layer had a file, link, device or whiteout: that entry removed the
    // lower one (image spec, "Changeset over existing files"), whose content must not show
    // through the new directory.
    if (keepDir) this.setOpaque(rel, path);
  }

  /**
   * The directory `rel` and all it held are gone (replaced by a non-directory): what was noted
   * about them must not apply to whatever a later entry puts at the same names — through a
   * symlink at `rel`, a directory's mode would land on another one.
   */
  private forget(rel: string): void {
    const below = `${rel}/`;
    this.dirs.delete(rel);
    for (const k of this.dirs.keys()) if (k.startsWith(below)) this.dirs.delete(k);
    this.notes.forget(rel);
    this.paths.forgetBelow(rel);
  }

  /**
   * `mkdir -p` of the parent of `rel`, one directory at a time, noting each one made as implied.
   * A whiteout of this layer on the way gives way to the directory (the layer removed the lower
   * entry, and makes a new one). Across a symlink of this layer the kernel resolves the path
   * (unpack-paths.ts); the directories made there are not noted.
   */
  private makeParents(rel: string): void {
    if (this.paths.crossesSymlink(rel)) {
      this.paths.mkdirParents(rel);
      return;
    }
    for (let slash = rel.indexOf('/'); slash >= 0; slash = rel.indexOf('/', slash + 1)) {
      const prefix = rel.slice(0, slash);
      const path = `${this.dir}/${prefix}`;
      try {
        fs.mkdirSync(path, 0o755);
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
        const st = fs.lstatSync(path);
        if (st.isDirectory()) continue;
        if (!(isWhiteout(st) && this.notes.deletedBelow.has(prefix))) throw new TsrunError('EBADIMAGE', `${prefix} is not a directory`);
        fs.unlinkSync(path);
        fs.mkdirSync(path, 0o755);
        this.setOpaque(prefix, path); // the lower entry is whited out: a new, empty directory
      }
      this.notes.implied.add(prefix);
    }
  }

  /** Removes the attributes an earlier entry of this layer set (not overlayfs's own). */
  private dropXattrs(path: string): void {
    let names: string[];
    try {
      names = libc.llistxattr(path);
    } catch (err) {
      if (errnoOf(err) === 'ENOTSUP' || errnoOf(err) === 'EOPNOTSUPP') return;
      throw err;
    }
    for (const name of names) if (!isOverlayXattr(name)) libc.lremovexattr(path, name);
  }

  private applyOwner(path: string, header: Header): void {
    if (this.owners) fs.lchownSync(path, uidOf(header), gidOf(header));
  }

  private setXattrs(xattrs: Array<[string, Buffer]>, set: (name: string, value: Buffer) => void): void {
    for (const [name, value] of xattrs) {
      try {
        set(name, value);
      } catch (err) {
        if (!droppableXattrError(err, name)) throw err;
      }
    }
  }
}

/**
 * The name a `.wh.<name>` entry removes. It must be one ordinary name: `.wh.` names nothing,
 * `.wh..` the directory holding it and `.wh...` that directory's parent (the store itself, at the
 * layer's top).
 */
function whiteoutTarget(base: string, name: string): string {
  if (name === '' || name === '.' || name === '..') throw new TsrunError('EUNSAFE', `whiteout "${base}" names no entry of the directory it is in`);
  return name;
}

function closeFile(f: OpenFile): void {
  try {
    fs.closeSync(f.fd);
  } finally {
    f.placed.release();
  }
}

/**
 * An error while unpacking an entry, saying which entry (a TsrunError keeps its code); a system
 * error that names no file (a write through an fd: a full disk) names the entry's host path.
 */
function inEntry(what: string, err: unknown, hostPath: string): TsrunError {
  if (err instanceof TsrunError) return new TsrunError(err.code, `${what}: ${err.message}`, { cause: err.cause });
  if (err instanceof Error && errnoOf(err) && typeof (err as { path?: unknown }).path !== 'string') Object.assign(err, { path: hostPath });
  return wrap(ENVIRONMENT.has(errnoOf(err) ?? '') ? 'EINTERNAL' : 'EBADIMAGE', what, err);
}
