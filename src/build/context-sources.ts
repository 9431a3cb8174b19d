// COPY and ADD sources in the build context: which entries a source names, what is below them,
// and the cache key of their contents.
//
// The context may hold symlinks that point anywhere (`x -> /etc/passwd`, `d -> ../..`). Docker
// follows a symlink that is a source itself, but scoped to the context root, as if the context
// were `/`; below a copied directory it copies symlinks as symlinks. Here the kernel does the
// scoping: a source is opened with openat2(RESOLVE_IN_ROOT) on the context root, and the path
// it reached is read back from /proc/self/fd. Walks below it never follow a symlink (lstat).
//
// .dockerignore applies as docker's context transfer would: what it excludes is not in the
// context at all. So an excluded source is "not found", a source reached through a symlink is
// found only if both its own path and the path it resolves to are sent, and a walk skips what
// is excluded — except that it descends into an excluded directory whose entries a `!` pattern
// may re-include, and yields that directory (before its first re-included entry) only if it
// holds one.
//
// Trust: a directory context is the user's own tree and is assumed not to change during the
// build (docker reads it the same way); a context from stdin is a private directory.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import * as libc from '../sys/libc.js';
import { carriedXattrs } from '../overlay/xattrs.js';
import type { BuildContext, SourceEntry, WalkEntry } from './context.js';
import { globSegment, hasWildcards } from './context-ignore.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const IN_ROOT = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS;

/** `../x`, `/x`, `./x/` → `x`; `.`, `/`, `..` → `` (the root): a source cannot leave the context. */
export function cleanSource(source: string): string {
  return posix.normalize(`/${source}`).slice(1).replace(/\/$/, '');
}

/** The context root as an fd, and its real path (what /proc/self/fd shows for paths below it). */
export class ContextRoot {
  readonly fd: number;
  readonly real: string;

  constructor(dir: string) {
    this.fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY | libc.O_CLOEXEC);
    this.real = fs.readlinkSync(`/proc/self/fd/${this.fd}`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /** openat2 of `rel` with the context as `/`: every symlink and `..` stays inside. libc fd. */
  open(rel: string, flags: number): number {
    return libc.openat2(this.fd, rel === '' ? '.' : rel, flags | libc.O_CLOEXEC, IN_ROOT);
  }

  /** Where `rel` leads inside the context, following its symlinks there; undefined if nowhere. */
  resolve(rel: string): { real: string; realRel: string } | undefined {
    let fd: number;
    try {
      fd = this.open(rel, libc.O_PATH);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    let real: string;
    try {
      real = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } finally {
      libc.close(fd);
    }
    if (real === this.real) return { real, realRel: '' };
    // The kernel kept it inside; checked again because everything else here relies on it.
    if (!real.startsWith(`${this.real}/`)) throw new TsrunError('EUNSAFE', `build context path "${rel}" resolves outside the context`);
    return { real, realRel: real.slice(this.real.length + 1) };
  }

  /** The names in directory `rel` (symlinks followed inside the context); [] if not one. */
  list(rel: string): string[] {
    let fd: number;
    try {
      fd = this.open(rel, O_RDONLY | O_DIRECTORY);
    } catch (err) {
      if (['ENOENT', 'ENOTDIR'].includes(errnoOf(err) ?? '')) return [];
      throw err;
    }
    try {
      return fs.readdirSync(`/proc/self/fd/${fd}`).sort();
    } finally {
      libc.close(fd);
    }
  }
}

export function resolveSources(ctx: BuildContext, sources: string[], keyword = 'COPY'): Array<{ source: string; matches: SourceEntry[] }> {
  const root = new ContextRoot(ctx.dir);
  try {
    return sources.map((source) => {
      try {
        return { source, matches: resolveOne(ctx, root, source, keyword) };
      } catch (err) {
        throw wrap('EBUILD', `${keyword} source "${source}"`, err);
      }
    });
  } finally {
    root.close();
  }
}

function resolveOne(ctx: BuildContext, root: ContextRoot, source: string, keyword: string): SourceEntry[] {
  const rel = cleanSource(source);
  const segments = rel === '' ? [] : rel.split('/');
  if (!segments.some(hasWildcards)) {
    const e = entryAt(ctx, root, rel);
    if (!e) throw new TsrunError('EBUILD', `${keyword} failed: "/${rel}": not found`);
    return [e];
  }
  // One segment at a time: a wildcard segment is matched against the names of each directory
  // reached so far, a plain one appended.
  let paths = [''];
  for (const seg of segments) {
    if (!hasWildcards(seg)) {
      paths = paths.map((p) => join(p, seg));
      continue;
    }
    const re = globSegment(seg);
    paths = paths.flatMap((p) => root.list(p).filter((name) => re.test(name)).map((name) => join(p, name)));
  }
  const matches = paths.map((p) => entryAt(ctx, root, p)).filter((e): e is SourceEntry => e !== undefined);
  if (matches.length === 0) throw new TsrunError('EBUILD', `${keyword} failed: no source files were specified: "${source}" matches nothing in the build context`);
  return matches.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** The entry at `rel`, if it is in the context as docker would send it. */
function entryAt(ctx: BuildContext, root: ContextRoot, rel: string): SourceEntry | undefined {
  const at = root.resolve(rel);
  if (!at) return undefined;
  const stat = fs.lstatSync(at.real);
  const e: SourceEntry = { path: at.real, rel, realRel: at.realRel, stat };
  if (!ctx.ignored(rel) && !ctx.ignored(at.realRel)) return e;
  // Excluded, but a directory may still hold re-included entries: then it is sent.
  if (!stat.isDirectory()) return undefined;
  for (const below of walkSource(ctx, e)) if (below.rel !== '') return e;
  return undefined;
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/**
 * The entry itself, then (a directory) everything below it, depth-first in name order. Symlinks
 * below the top are not followed; sockets are skipped (tar has no type for them).
 */
export function* walkSource(ctx: BuildContext, top: SourceEntry): Generator<WalkEntry> {
  yield { rel: '', path: top.path, stat: top.stat };
  if (!top.stat.isDirectory()) return;
  yield* walkDir(ctx, top.path, '', top.realRel ?? top.rel, []);
}

function* walkDir(ctx: BuildContext, dir: string, rel: string, ctxRel: string, pending: WalkEntry[]): Generator<WalkEntry> {
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return; // gone meanwhile
    throw err;
  }
  for (const name of names) {
    const path = `${dir}/${name}`;
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(path);
    } catch (err) {
      // Node reads names as UTF-8: a name that is not comes back altered and is not found.
      if (name.includes('\uFFFD')) throw new TsrunError('EBUILD', `${path}: tsrun cannot copy a file whose name is not valid UTF-8`);
      if (errnoOf(err) === 'ENOENT') continue; // removed meanwhile
      throw err;
    }
    if (stat.isSocket()) continue;
    const e = { rel: join(rel, name), path, stat };
    const inContext = join(ctxRel, name);
    if (ctx.ignored(inContext)) {
      if (!stat.isDirectory() || !reincludesBelow(ctx, inContext)) continue;
      // Held back until something below it is yielded: an excluded directory holding nothing
      // re-included is not there at all.
      pending.push(e);
      yield* walkDir(ctx, path, e.rel, inContext, pending);
      if (pending.at(-1) === e) pending.pop();
      continue;
    }
    if (pending.length > 0) yield* pending.splice(0);
    yield e;
    if (stat.isDirectory()) yield* walkDir(ctx, path, e.rel, inContext, pending);
  }
}

function reincludesBelow(ctx: BuildContext, rel: string): boolean {
  return ctx.reincludesBelow ? ctx.reincludesBelow(rel) : true;
}

// ---- the cache key -------------------------------------------------------------------------

/**
 * Files up to this size are read with sync calls: measured on 2,000 files of 10 kB, a file's
 * open/fstat/read/close through the thread pool cost 5x what the sync calls do (250 vs 50 ms).
 * Larger ones stream through the pool, so one big file does not freeze the event loop.
 */
const SYNC_READ_MAX = 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
/** Sync reads between turns of the event loop (progress output keeps moving). */
const YIELD_EVERY = 8 * 1024 * 1024;

interface Item {
  line: string;
  file?: string;
  /** What the file's lstat says (device, inode, size, mtime, ctime): FileHashes' key. */
  stat?: string;
}

/**
 * Content hashes remembered from an earlier build, by what a file's lstat says: any write or
 * chmod changes its ctime (which nothing can set back), so an unchanged key is unchanged
 * bytes. A rebuild then reads no file it has hashed before.
 */
export interface FileHashes {
  get(stat: string): string | undefined;
  set(stat: string, hash: string): void;
}

/**
 * sha256 over every entry of the sources, in walk order: the top's path in the context, the
 * entry's path below it, type, permission bits, owner, symlink target, device numbers, size and
 * a regular file's content sha256, the extended attributes COPY carries (a `setcap` changes the
 * layer), and which files are hard links of an earlier one (COPY keeps them as links). Times and
 * inode numbers are left out, so a fresh checkout or a `touch` keeps the cache (docker's classic
 * builder hashed tar headers without times).
 */
export async function sourcesDigest(ctx: BuildContext, matches: SourceEntry[], known?: FileHashes): Promise<string> {
  const items: Item[] = [];
  const links = new Map<string, string>();
  for (const top of matches) {
    items.push({ line: `top\0${top.rel}\n` });
    for (const e of walkSource(ctx, top)) items.push(describe(e, `${top.rel}/${e.rel}`, links));
  }
  const contents = await hashFiles(items, known);
  const h = createHash('sha256');
  h.update('tsrun-build-sources-v2\n');
  items.forEach((item, i) => {
    h.update(item.line);
    if (item.file !== undefined) h.update(`${contents[i]}\n`);
  });
  return `sha256:${h.digest('hex')}`;
}

function describe(e: WalkEntry, name: string, links: Map<string, string>): Item {
  const st = e.stat;
  const type = st.isFile() ? 'f' : st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : '?';
  const link = type === 'l' ? fs.readlinkSync(e.path) : '';
  const dev = type === 'c' || type === 'b' ? String(st.rdev) : '';
  // A directory's size is the file system's business, and changes as entries come and go.
  const size = type === 'f' ? st.size : 0;
  const xattrs = type === 'l' ? '' : carriedXattrs(e.path).map(([k, v]) => `${k}=${v.toString('hex')}`).sort().join(',');
  let hardlinkOf = '';
  if (type === 'f' && st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    hardlinkOf = links.get(key) ?? '';
    if (hardlinkOf === '') links.set(key, name);
  }
  const line = [e.rel, type, (st.mode & 0o7777).toString(8), st.uid, st.gid, link, dev, size, xattrs, hardlinkOf].join('\0');
  // A hard link's content is its first name's: hashed once.
  const stat = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  return type === 'f' && hardlinkOf === '' ? { line: `${line}\n`, file: e.path, stat } : { line: `${line}\n` };
}

async function hashFiles(items: Item[], known?: FileHashes): Promise<string[]> {
  const out: string[] = new Array<string>(items.length);
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  let sinceYield = 0;
  for (let i = 0; i < items.length; i++) {
    const { file, stat } = items[i]!;
    if (file === undefined) continue;
    const remembered = stat === undefined ? undefined : known?.get(stat);
    if (remembered !== undefined) {
      out[i] = remembered;
      continue;
    }
    let size: number;
    try {
      [out[i], size] = await hashFile(file, buf);
    } catch (err) {
      throw wrap('EBUILD', `reading ${file} from the build context`, err);
    }
    if (stat !== undefined) known?.set(stat, out[i]!);
    sinceYield += size + 4096; // a file's open and close count too
    if (sinceYield >= YIELD_EVERY) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  return out;
}

/** The file's content sha256 (hex) and size. */
async function hashFile(path: string, buf: Buffer): Promise<[string, number]> {
  // O_NOFOLLOW: the walk saw a file, not a symlink; O_NONBLOCK: a fifo put there meanwhile must
  // not hang the build (and fstat then refuses it).
  const fd = fs.openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | libc.O_CLOEXEC);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new TsrunError('EBUILD', `${path} changed while it was read`);
    const h = createHash('sha256');
    const small = st.size <= SYNC_READ_MAX;
    let size = 0;
    for (;;) {
      const n = small ? fs.readSync(fd, buf, 0, buf.length, null) : await readAsync(fd, buf);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
    return [h.digest('hex'), size];
  } finally {
    fs.closeSync(fd);
  }
}

function readAsync(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n))));
}
