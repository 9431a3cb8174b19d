// `tsrun build -`: the build context arrives on stdin, as a tar archive (plain, gzip or zstd),
// or — `tsrun build - < Dockerfile`, as docker accepts — as a bare Dockerfile with no context.
//
// The tar is hostile input. It is parsed by the layer unpacker's TarReader and written into a
// fresh 0700 directory with the layer unpacker's path rules (unpack-paths.ts): a name is cleaned
// like a path under `/` (a leading `/` dropped, a `..` above the root refuses the whole context,
// EUNSAFE); the only symlinks on any path are the ones this archive made, tracked, and a path
// that crosses one is resolved by the kernel inside the directory (openat2 RESOLVE_IN_ROOT);
// the last component is never followed (O_EXCL|O_NOFOLLOW, lchown, lutimes); a hardlink's target
// must be an entry of the archive. Unlike a layer, a context has no whiteouts (`.wh.x` is just a
// file name), and device nodes and fifos are skipped: COPY of a device from a context makes no
// sense, and not making them keeps mknod out of reach of whoever wrote the archive.
import * as fs from 'node:fs';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import { decompress, sniff } from '../image/compression.js';
import { TarReader, gidOf, mtimeOf, uidOf, type Header, type TarSink } from '../image/tar.js';
import { PathResolver, cleanPath, type Placed } from '../image/unpack-paths.js';

/** At most this many entries in a context tar: a bound on the work a crafted archive makes. */
export const MAX_CONTEXT_ENTRIES = 1_000_000;
/** A Dockerfile (or a .dockerignore) larger than this is refused. */
export const MAX_DOCKERFILE_SIZE = 4 * 1024 * 1024;

export interface StdinOptions {
  maxEntries?: number;
  /** Apply the tar's owners (for the COPY cache key). Default: when running as root. */
  owners?: boolean;
}

export type StdinContext = { kind: 'tar'; entries: number; skipped: string[] } | { kind: 'dockerfile'; text: string };

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;

/**
 * Reads stdin and, for a tar, unpacks it into `dir` (empty, made by the caller, only tsrun can
 * write in it). What it is comes from its first bytes: a compression magic or a tar header
 * means a context; anything else is a Dockerfile (docker's GetContextFromReader).
 */
export async function readStdinContext(stdin: NodeJS.ReadableStream, dir: string, options: StdinOptions = {}): Promise<StdinContext> {
  const input = stdin[Symbol.asyncIterator]() as AsyncIterator<string | Buffer>;
  const head = await readHead(input, 1024);
  const rest = (async function* (): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (;;) {
      const r = await input.next();
      if (r.done) return;
      yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
  })();
  const kind = sniff(head);
  if (kind === 'bzip2' || kind === 'xz') {
    throw new TsrunError('EBUILD', `the build context on stdin is ${kind}-compressed, which tsrun does not read: send it plain, gzip- or zstd-compressed`);
  }
  // Two zero blocks: an empty archive, which isTarHeader does not take for a header.
  const emptyTar = head.length >= 1024 && head.every((b) => b === 0);
  if (kind === 'unknown' && !emptyTar) {
    if (head.length === 0) throw new TsrunError('EBUILD', 'stdin is empty: expected a build context (a tar archive) or a Dockerfile');
    return { kind: 'dockerfile', text: await readCapped(rest, 'the Dockerfile on stdin') };
  }
  const tar = kind === 'unknown' || kind === 'none' ? rest : decompress(rest, kind);
  return unpackContextTar(tar, dir, options);
}

/** Reads a whole (small) stream as UTF-8 text, refusing more than MAX_DOCKERFILE_SIZE bytes. */
export async function readCapped(source: AsyncIterable<string | Buffer>, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += b.length;
    if (size > MAX_DOCKERFILE_SIZE) throw new TsrunError('EBUILD', `${what} is larger than ${MAX_DOCKERFILE_SIZE / 1024 / 1024} MiB`);
    chunks.push(b);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

/** The first `n` bytes (fewer if the stream ends sooner). */
async function readHead(input: AsyncIterator<string | Buffer>, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  while (size < n) {
    const r = await input.next();
    if (r.done) break;
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(b);
    size += b.length;
  }
  return Buffer.concat(chunks, size);
}

/** Unpacks a context tar into `dir`; see the rules at the top of this file. */
export async function unpackContextTar(source: AsyncIterable<Uint8Array>, dir: string, options: StdinOptions = {}): Promise<StdinContext> {
  const sink = new ContextUnpacker(dir, options);
  const reader = new TarReader(sink);
  try {
    for await (const chunk of source) {
      reader.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
    reader.finish();
    sink.finish();
  } catch (err) {
    sink.abort();
    if (err instanceof TsrunError) throw err;
    throw wrap('EBUILD', 'reading the build context from stdin', err);
  }
  return { kind: 'tar', entries: sink.entries, skipped: sink.skipped };
}

interface OpenFile {
  fd: number;
  placed: Placed;
  header: Header;
}

class ContextUnpacker implements TarSink {
  entries = 0;
  /** Entries not made (devices, fifos, unknown types), by name. */
  readonly skipped: string[] = [];
  private readonly paths: PathResolver;
  private readonly owners: boolean;
  private readonly maxEntries: number;
  private readonly dirs = new Map<string, { mode: number; mtime: number }>();
  private file: OpenFile | undefined;

  constructor(
    private readonly dir: string,
    options: StdinOptions,
  ) {
    this.paths = new PathResolver(dir);
    this.owners = options.owners ?? process.getuid?.() === 0;
    this.maxEntries = options.maxEntries ?? MAX_CONTEXT_ENTRIES;
  }

  entry(header: Header): void {
    if (++this.entries > this.maxEntries) throw new TsrunError('EBUILD', `the build context on stdin has more than ${this.maxEntries} entries`);
    const what = `build context entry ${header.type ?? 'entry'} "${header.name}"`;
    try {
      const rel = cleanPath(header.name);
      if (rel === '') {
        // The context root is the directory tsrun made: an entry for it may set its mode and
        // times, and nothing else (as a symlink it would send every later entry elsewhere).
        if (header.type !== 'directory') throw new TsrunError('EUNSAFE', 'names the context root itself, which only a directory entry may');
        this.dirs.set('', { mode: header.mode & 0o777, mtime: mtimeOf(header) });
        return;
      }
      switch (header.type) {
        case 'file':
        case 'contiguous-file':
          return this.openFile(rel, header);
        case 'directory':
          return this.directory(rel, header);
        case 'symlink':
          return this.symlink(rel, header);
        case 'link':
          return this.hardlink(rel, header);
        default:
          this.skipped.push(header.name);
      }
    } catch (err) {
      if (err instanceof TsrunError) throw new TsrunError(err.code, `${what}: ${err.message}`, { cause: err.cause });
      throw wrap('EBUILD', what, err);
    }
  }

  data(chunk: Buffer): void {
    const f = this.file;
    if (!f) return;
    let off = 0;
    while (off < chunk.length) off += fs.writeSync(f.fd, chunk, off);
  }

  end(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    try {
      if (this.owners) fs.fchownSync(f.fd, uidOf(f.header), gidOf(f.header));
      fs.fchmodSync(f.fd, f.header.mode & 0o7777); // after chown, which clears setuid/setgid
      const t = mtimeOf(f.header);
      fs.futimesSync(f.fd, t, t);
    } finally {
      fs.closeSync(f.fd);
      f.placed.release();
    }
  }

  /** Directory modes and times last, deepest first: writing in a directory changes them. */
  finish(): void {
    const dirs = [...this.dirs.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [rel, d] of dirs) {
      const p = this.paths.place(rel);
      try {
        const fd = fs.openSync(p.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        try {
          fs.fchmodSync(fd, d.mode);
          fs.futimesSync(fd, d.mtime, d.mtime);
        } finally {
          fs.closeSync(fd);
        }
      } catch (err) {
        // Replaced by a non-directory later in the archive: nothing to apply.
        if (!['ENOTDIR', 'ELOOP', 'ENOENT'].includes(errnoOf(err) ?? '')) throw err;
      } finally {
        p.release();
      }
    }
    this.paths.close();
  }

  abort(): void {
    const f = this.file;
    this.file = undefined;
    try {
      if (f) {
        fs.closeSync(f.fd);
        f.placed.release();
      }
    } catch {
      // the error that stopped us is the one to report
    }
    this.paths.close();
  }

  private openFile(rel: string, header: Header): void {
    const placed = this.paths.place(rel, true);
    try {
      let fd = -1;
      this.create(placed.path, rel, () => {
        fd = fs.openSync(placed.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
      });
      this.file = { fd, placed, header };
    } catch (err) {
      placed.release();
      throw err;
    }
  }

  private directory(rel: string, header: Header): void {
    const p = this.paths.place(rel, true);
    try {
      this.create(p.path, rel, () => fs.mkdirSync(p.path, 0o700), true);
      if (this.owners) fs.lchownSync(p.path, uidOf(header), gidOf(header));
    } finally {
      p.release();
    }
    this.dirs.set(rel, { mode: header.mode & 0o7777, mtime: mtimeOf(header) });
  }

  private symlink(rel: string, header: Header): void {
    const target = header.linkname ?? '';
    if (target === '') throw new TsrunError('EBUILD', 'symlink without a target');
    const p = this.paths.place(rel, true);
    try {
      this.create(p.path, rel, () => fs.symlinkSync(target, p.path));
      this.paths.addSymlink(rel);
      if (this.owners) fs.lchownSync(p.path, uidOf(header), gidOf(header));
      const t = mtimeOf(header);
      fs.lutimesSync(p.path, t, t);
    } finally {
      p.release();
    }
  }

  private hardlink(rel: string, header: Header): void {
    const targetRel = cleanPath(header.linkname ?? '');
    if (targetRel === '') throw new TsrunError('EUNSAFE', 'hardlink to the context root');
    let t: Placed | undefined;
    try {
      let st: fs.Stats;
      try {
        t = this.paths.place(targetRel);
        st = fs.lstatSync(t.path);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') {
          throw new TsrunError('EUNSAFE', `hardlink target ${header.linkname} is not an earlier entry of the archive`);
        }
        throw err;
      }
      if (st.isDirectory()) throw new TsrunError('EUNSAFE', `hardlink target ${header.linkname} is a directory`);
      const p = this.paths.place(rel, true);
      try {
        // link(2) follows neither name: a link to a symlink is a new name for the symlink.
        const target = t.path;
        this.create(p.path, rel, () => fs.linkSync(target, p.path));
        if (st.isSymbolicLink()) this.paths.addSymlink(rel);
      } finally {
        p.release();
      }
    } finally {
      t?.release();
    }
  }

  /**
   * Runs `make` (which never follows a last-component symlink) and does what tar does where
   * something is already there: a directory stays for a directory (`keepDir`); anything else is
   * removed first. Missing parents are made like `mkdir -p`, inside the context.
   */
  private create(path: string, rel: string, make: () => void, keepDir = false): void {
    try {
      make();
      return;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        this.makeParents(rel);
        make();
        return;
      }
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    const st = fs.lstatSync(path);
    if (st.isDirectory()) {
      if (keepDir) return;
      fs.rmSync(path, { recursive: true });
      this.dirs.delete(rel);
      for (const k of this.dirs.keys()) if (k.startsWith(`${rel}/`)) this.dirs.delete(k);
      this.paths.forgetBelow(rel);
    } else {
      fs.unlinkSync(path);
      if (st.isSymbolicLink()) this.paths.removeSymlink(rel);
    }
    make();
  }

  private makeParents(rel: string): void {
    if (this.paths.crossesSymlink(rel)) {
      this.paths.mkdirParents(rel);
      return;
    }
    for (let slash = rel.indexOf('/'); slash >= 0; slash = rel.indexOf('/', slash + 1)) {
      const path = `${this.dir}/${rel.slice(0, slash)}`;
      try {
        fs.mkdirSync(path, 0o755);
      } catch (err) {
        if (errnoOf(err) !== 'EEXIST') throw err;
        if (!fs.lstatSync(path).isDirectory()) throw new TsrunError('EBUILD', `${rel.slice(0, slash)} is not a directory`);
      }
    }
  }
}
