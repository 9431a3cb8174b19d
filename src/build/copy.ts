// COPY and ADD: the step's files become one tar, extracted into a build container's root by
// the same code as `tsrun cp - CONTAINER:/` (every parent resolved by the kernel inside the
// container's root, nothing made through a symlink), then the container's upper dir is
// committed as the step's layer. Sources are the build context (context.ts confines them to
// it), a heredoc, an earlier stage or an image (read through `cp CONTAINER:PATH -`), a local
// archive that ADD unpacks, or a URL that ADD downloads.
//
// Names follow docker's rules: a directory source copies its contents; several sources (or a
// wildcard) need a destination ending in `/`; one file goes to DEST, or into DEST when DEST is
// an existing directory.
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { decompressSniffed, isTarHeader, sniff } from '../image/compression.js';
import { extract, feed, pack as tarPack, xattrPax, xattrsOf, type Header, type Pack, type PackHeader } from '../image/tar.js';
import { cleanPath } from '../image/unpack-paths.js';
import type { LowerLayers } from '../overlay/lower-layers.js';
import { carriedXattrs } from '../overlay/xattrs.js';
import { copyFromStream, copyToStream } from '../container/cp.js';
import type { Found } from '../container/lookup.js';
import type { BuildContext, SourceEntry } from './context.js';
import { resolveSources, walkSource } from './context.js';
import type { Heredoc } from './instructions.js';
import { statInImage } from './image-paths.js';
import { resolveUser } from '../container/user.js';

/** Where files go and who owns them. */
export interface CopyTarget {
  /** Absolute, clean destination in the image (WORKDIR applied). */
  dest: string;
  /** The destination was written with a trailing `/`. */
  destIsDir: boolean;
  /** --chown, resolved to numbers; undefined keeps the default (root, or the source's for --from). */
  owner?: { uid: number; gid: number };
  /** --chmod, as permission bits. */
  mode?: number;
  /**
   * DEST is already a directory in the image (or a symlink to one): it keeps its own attributes,
   * and a source's top directory entry is not written over it (which would replace a symlink).
   */
  destExists?: boolean;
  /** Directories to make first (missing parents, with --chown's owner, as BuildKit makes them). */
  makeDirs?: string[];
}

/** One entry to write: its name relative to the image root, its header, its bytes. */
export interface Item {
  header: PackHeader;
  body?: Buffer | (() => Readable);
}

/** What a COPY/ADD step copies, gathered before anything is written. */
export type CopySource =
  | { kind: 'context'; ctx: BuildContext; source: string; matches: SourceEntry[] }
  | { kind: 'heredoc'; heredoc: Heredoc }
  | { kind: 'container'; found: Found; path: string }
  | { kind: 'archive'; entry: SourceEntry }
  | { kind: 'url'; url: string; file: string; mtime: Date }
  /** WORKDIR: DEST itself, a directory (0755, root), made only if missing. */
  | { kind: 'mkdir' };

/**
 * Whether the destination is a directory: written with a trailing slash, or several things are
 * copied, or (one file) the destination already is a directory in the image. Symlinks in the
 * image are followed inside its root.
 */
export function destinationIsDir(lowers: LowerLayers, target: CopyTarget, count: number, wildcard: boolean): boolean {
  if (target.destIsDir) return true;
  if (count > 1 || wildcard) {
    throw new TsrunError('EBUILD', `when using COPY with more than one source file, the destination must be a directory and end with a /`);
  }
  return statInImage(lowers, target.dest)?.isDirectory() ?? false;
}

/** Resolves a step's context sources (wildcards, .dockerignore) before the step's cache key. */
export function contextSources(ctx: BuildContext, sources: string[]): { sources: CopySource[]; wildcard: boolean; count: number } {
  const out: CopySource[] = [];
  let count = 0;
  for (const r of resolveSources(ctx, sources)) {
    out.push({ kind: 'context', ctx, source: r.source, matches: r.matches });
    count += r.matches.length;
  }
  return { sources: out, wildcard: sources.some((s) => /[*?[]/.test(s)), count };
}

/**
 * Writes the sources into the container's root (which must be created, not running) as one
 * tar through `cp -`'s extractor. `destDir`: DEST is a directory that receives the sources.
 */
export async function copyInto(found: Found, sources: CopySource[], target: CopyTarget, destDir: boolean): Promise<void> {
  const pack = tarPack();
  const items = itemsOf(sources, target, destDir);
  const writing = (async () => {
    try {
      for await (const item of items) await write(pack, item);
      pack.finalize();
    } catch (err) {
      (pack as unknown as { destroy(e: Error): void }).destroy(err as Error);
      throw err;
    }
  })();
  const reading = copyFromStream(found, '/', Readable.from(pack), { archive: true });
  const [w, r] = await Promise.allSettled([writing, reading]);
  if (w.status === 'rejected') throw w.reason;
  if (r.status === 'rejected') throw r.reason;
}

export async function write(pack: Pack, item: Item): Promise<void> {
  const { header, body } = item;
  await new Promise<void>((resolve, reject) => {
    if (body === undefined || Buffer.isBuffer(body)) {
      pack.entry(header, body ?? undefined, (err) => (err ? reject(err) : resolve()));
      return;
    }
    const sink = pack.entry(header, undefined, (err) => (err ? reject(err) : resolve()));
    const src = body();
    src.on('error', reject);
    src.pipe(sink as unknown as NodeJS.WritableStream);
  });
}

/** The image-relative name for `rel` below a source whose own name is `base`. */
function nameIn(target: CopyTarget, destDir: boolean, base: string, rel: string): string {
  const dest = target.dest.replace(/^\/+/, '');
  const top = destDir ? posix.join(dest, base) : dest;
  return rel === '' ? top : posix.join(top, rel);
}

export async function* itemsOf(sources: CopySource[], target: CopyTarget, destDir: boolean): AsyncGenerator<Item> {
  const links = new Map<string, string>();
  const owner = (uid: number, gid: number) => target.owner ?? { uid, gid };
  for (const dir of target.makeDirs ?? []) {
    const o = owner(0, 0);
    yield { header: { name: `${dir.replace(/^\/+/, '')}/`, type: 'directory', mode: 0o755, uid: o.uid, gid: o.gid, mtime: new Date() } };
  }
  for (const s of sources) {
    switch (s.kind) {
      case 'context':
        for (const top of s.matches) {
          const isDir = top.stat.isDirectory();
          // A directory's contents go to DEST itself (DEST/NAME only for a file).
          const base = isDir ? '' : posix.basename(top.rel);
          for (const e of walkSource(s.ctx, top)) {
            const name = isDir ? nameIn(target, true, '', e.rel) : nameIn(target, destDir, base, '');
            // --chmod is for what is copied, not for DEST itself (made with the source dir's mode).
            const item = contextItem(name, e.path, e.stat, owner(0, 0), isDir && e.rel === '' ? undefined : target.mode, links);
            if (item) yield item;
          }
        }
        break;
      case 'heredoc': {
        const name = nameIn(target, destDir, s.heredoc.name, '');
        const body = Buffer.from(s.heredoc.body);
        const o = owner(0, 0);
        yield { header: { name, type: 'file', size: body.length, mode: target.mode ?? 0o644, uid: o.uid, gid: o.gid, mtime: new Date() }, body };
        break;
      }
      case 'container':
        yield* fromContainer(s.found, s.path, target, destDir);
        break;
      case 'archive':
        yield* fromArchive(s.entry, target);
        break;
      case 'mkdir': {
        yield { header: { name: `${target.dest.replace(/^\/+/, '')}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date() } };
        break;
      }
      case 'url': {
        const name = nameIn(target, destDir, s.file, '');
        const st = fs.statSync(s.url);
        const o = owner(0, 0);
        yield {
          header: { name, type: 'file', size: st.size, mode: target.mode ?? 0o600, uid: o.uid, gid: o.gid, mtime: s.mtime },
          body: () => fs.createReadStream(s.url),
        };
        break;
      }
    }
  }
}

/** A context file as a tar item; the file is opened now (O_NOFOLLOW), its size fixed now. */
function contextItem(name: string, path: string, st: fs.Stats, owner: { uid: number; gid: number }, chmod: number | undefined, links: Map<string, string>): Item | undefined {
  const base = { name, mode: chmod ?? st.mode & 0o7777, uid: owner.uid, gid: owner.gid, mtime: st.mtime, uname: '', gname: '' };
  const xattrs = () => {
    const found = carriedXattrs(path);
    return found.length > 0 ? { pax: xattrPax(found) } : {};
  };
  if (st.isDirectory()) return { header: { ...base, ...xattrs(), name: `${name}/`, type: 'directory' } };
  if (st.isSymbolicLink()) return { header: { ...base, type: 'symlink', linkname: fs.readlinkSync(path) } };
  if (!st.isFile()) return undefined; // devices, fifos and sockets in a context are not copied
  if (st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) return { header: { ...base, type: 'link', linkname: first, size: 0 } };
    links.set(key, name);
  }
  const size = st.size;
  const header: PackHeader = { ...base, ...xattrs(), type: 'file', size };
  // Small files are read at once (a stream per file costs more than the file); big ones stream.
  // Either way exactly `size` bytes: a file that changed size since it was hashed is an error.
  if (size <= SMALL_FILE) return { header, body: readExactly(path, size) };
  return {
    header,
    body: () => {
      const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      return fs.createReadStream('', { fd, start: 0, end: size - 1 });
    },
  };
}

const SMALL_FILE = 1024 * 1024;

function readExactly(path: string, size: number): Buffer {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(fd, buf, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    if (done !== size || fs.fstatSync(fd).size !== size) throw new TsrunError('EBUILD', `${path} changed while it was copied`);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

/** `COPY --from=STAGE|IMAGE PATH`: the path read out of a container made on it, as `cp` reads it. */
async function* fromContainer(found: Found, path: string, target: CopyTarget, destDir: boolean): AsyncGenerator<Item> {
  const out = new PassThrough();
  const reading = copyToStream(found, path, out, { followLink: true }).then(
    () => out.end(),
    (err: unknown) => out.destroy(err as Error),
  );
  const ex = extract();
  const fed = feed(out, ex);
  let top: string | undefined;
  let topIsDir = false;
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const rel = cleanPath(h.name);
      if (top === undefined) {
        top = rel;
        topIsDir = h.type === 'directory';
      }
      const below = rel === top ? '' : rel.slice(top.length + 1);
      if (topIsDir && below === '' && target.destExists) {
        entry.resume();
        continue;
      }
      const name = topIsDir ? nameIn(target, true, '', below) : nameIn(target, destDir, posix.basename(top), '');
      const header = renamed(h, name, target, (link) => (topIsDir ? nameIn(target, true, '', cleanPath(link).slice(top!.length + 1)) : name), topIsDir && below === '');
      // The entry's bytes stream through (a file may be bigger than memory); drained if unread.
      yield { header, ...(isFile(h) && { body: () => Readable.from(entry) }) };
      entry.resume();
    }
  } finally {
    await reading;
    const failed = await fed;
    if (failed) throw failed;
  }
}

/** ADD of a local tar (plain, gzip or zstd): its entries unpacked below DEST, cleaned of `..`. */
async function* fromArchive(entry: SourceEntry, target: CopyTarget): AsyncGenerator<Item> {
  const { stream } = await decompressSniffed(fs.createReadStream(entry.path), `ADD ${entry.rel}`);
  const ex = extract();
  const fed = feed(stream, ex);
  const dest = target.dest.replace(/^\/+/, '');
  const place = (n: string) => {
    let rel: string;
    try {
      rel = cleanPath(n);
    } catch {
      throw new TsrunError('EUNSAFE', `ADD ${entry.rel}: the archive's entry "${n}" climbs out of the destination with ".."`);
    }
    return rel === '' ? dest : posix.join(dest, rel);
  };
  for await (const e of ex) {
    const h = e.header;
    const name = place(h.name);
    if (name === dest && h.type === 'directory' && target.destExists) {
      e.resume();
      continue;
    }
    if (name === dest && h.type !== 'directory') throw new TsrunError('EUNSAFE', `ADD ${entry.rel}: the archive's entry "${h.name}" names the destination itself`);
    const header: PackHeader = { ...headerOf(h), name: h.type === 'directory' ? `${name}/` : name, ...(h.type === 'link' && { linkname: place(h.linkname ?? '') }) };
    if (target.owner) Object.assign(header, target.owner);
    yield { header, ...(isFile(h) && { body: () => Readable.from(e) }) };
    e.resume();
  }
  const failed = await fed;
  if (failed) throw failed;
}

function headerOf(h: Header): PackHeader {
  return {
    name: h.name,
    type: h.type ?? 'file',
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    mtime: h.mtime,
    size: h.type === 'file' || h.type === 'contiguous-file' ? h.size : 0,
    ...(h.linkname ? { linkname: h.linkname } : {}),
    devmajor: h.devmajor,
    devminor: h.devminor,
    // Only the attributes: a pax `path` or `linkpath` would name the entry as it was, not as renamed.
    ...xattrHeader(h),
  };
}

function xattrHeader(h: Header): { pax?: Record<string, string> } {
  const xattrs = xattrsOf(h);
  return xattrs.length > 0 ? { pax: xattrPax(xattrs) } : {};
}

function renamed(h: Header, name: string, target: CopyTarget, link: (l: string) => string, isDest = false): PackHeader {
  const out: PackHeader = { ...headerOf(h), name: h.type === 'directory' ? `${name}/` : name };
  if (h.type === 'link') out.linkname = link(h.linkname ?? '');
  if (target.owner) Object.assign(out, target.owner);
  if (target.mode !== undefined && h.type !== 'symlink' && !isDest) out.mode = target.mode;
  return out;
}

const isFile = (h: Header) => h.type === 'file' || h.type === 'contiguous-file';

/**
 * ADD: whether a context file is a tar that ADD unpacks: a plain tar, or gzip or zstd whose
 * contents start with a tar header (a compressed file that is not a tar is copied as it is).
 * docker also unpacks bzip2 and xz tars; tsrun says so rather than copy one packed.
 */
export async function isArchive(path: string): Promise<boolean> {
  const head = readHead(path, 512);
  const kind = sniff(head);
  if (kind === 'none') return true;
  if (kind === 'bzip2' || kind === 'xz') {
    throw new TsrunError('EBUILD', `ADD ${path}: ${kind}-compressed files are not supported (gzip, zstd or plain tar are); COPY it and unpack it in a RUN step`);
  }
  if (kind !== 'gzip' && kind !== 'zstd') return false;
  const input = fs.createReadStream(path);
  try {
    const { stream } = await decompressSniffed(input, `ADD ${path}`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= 512) break;
    }
    stream.destroy();
    return isTarHeader(Buffer.concat(chunks).subarray(0, 512));
  } catch {
    return false; // not even valid compressed data: copied as it is
  } finally {
    input.destroy();
  }
}

function readHead(path: string, n: number): Buffer {
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const head = Buffer.alloc(n);
    return head.subarray(0, fs.readSync(fd, head, 0, n, 0));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `--chown=user[:group]`, names looked up in the image's /etc/passwd and /etc/group. Without a
 * group, as BuildKit: a user name takes that user's primary group, a bare uid the same number.
 */
export function chownIds(spec: string, layerDirsTopFirst: string[]): { uid: number; gid: number } {
  const parts = spec.split(':');
  if (parts.length > 2 || parts[0] === '') throw new TsrunError('EBUILD', `--chown=${spec}: invalid chown string format (user, user:group, uid or uid:gid)`);
  const [user = '', group] = parts;
  const u = resolveUser(user, layerDirsTopFirst);
  if (group === undefined || group === '') return { uid: u.uid, gid: /^\d+$/.test(user) ? u.uid : u.gid };
  return { uid: u.uid, gid: resolveUser(`0:${group}`, layerDirsTopFirst).gid };
}

/** `dir` and those of its parents the image does not have, top first (symlinks followed). */
export function missingDirs(lowers: LowerLayers, dir: string): string[] {
  const out: string[] = [];
  let prefix = '';
  for (const part of dir.split('/').filter(Boolean)) {
    prefix = `${prefix}/${part}`;
    if (out.length > 0 || !statInImage(lowers, prefix)) out.push(prefix);
  }
  return out;
}

