// Where `tsrun load` reads an image from: a directory (an OCI image layout) or a tarball
// (oci-archive, docker save), possibly gzip- or zstd-compressed, possibly on stdin.
//
// Both formats refer to files by path, and docker save writes manifest.json last, so a tarball
// is first copied entry by entry into a private temp dir in the store (flat files f0, f1, ...
// and a name → file map: nothing from the archive ever becomes a path on disk), then read
// like a directory. Archive symlinks (old docker save links duplicate layers) are resolved
// within the archive's names.
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import { decompressSniffed } from './compression.js';
import { removeTree } from './fsutil.js';
import { extract, feed } from './tar.js';
import { cleanPath } from './unpack-paths.js';

export interface ImageSource {
  /** For messages: the path, or "stdin". */
  readonly what: string;
  has(name: string): Promise<boolean>;
  size(name: string): Promise<number | undefined>;
  /** Reads a (small) file whole; EBADIMAGE when missing or over `limit` bytes. */
  read(name: string, limit: number): Promise<Buffer>;
  open(name: string): Readable;
  close(): Promise<void>;
}

export class DirSource implements ImageSource {
  constructor(readonly what: string) {}

  private full(name: string): string {
    return path.join(this.what, cleanPath(name));
  }

  async has(name: string): Promise<boolean> {
    return (await this.size(name)) !== undefined;
  }

  async size(name: string): Promise<number | undefined> {
    const st = await fs.stat(this.full(name)).catch(() => undefined);
    return st?.isFile() ? st.size : undefined;
  }

  async read(name: string, limit: number): Promise<Buffer> {
    return readLimited(this.full(name), name, this.what, limit);
  }

  open(name: string): Readable {
    return createReadStream(this.full(name));
  }

  async close(): Promise<void> {}
}

const MAX_LINK_HOPS = 16;

export class ArchiveSource implements ImageSource {
  private readonly files = new Map<string, string>();
  private readonly links = new Map<string, string>();

  private constructor(
    readonly what: string,
    private readonly tmp: string,
  ) {}

  /** Copies the archive read from `input` into `tmp` (which the source then owns). */
  static async fromStream(input: Readable, what: string, tmp: string): Promise<ArchiveSource> {
    const src = new ArchiveSource(what, tmp);
    try {
      const { stream } = await decompressSniffed(input, what);
      const ex = extract();
      const fed = feed(stream, ex);
      try {
        let n = 0;
        for await (const entry of ex) {
          const name = cleanPath(entry.header.name);
          if (entry.header.type === 'file' || entry.header.type === 'contiguous-file') {
            const file = path.join(tmp, `f${n++}`);
            const fh = await fs.open(file, 'wx', 0o600);
            try {
              for await (const chunk of entry) await fh.write(chunk);
            } catch (err) {
              // Our own write (a full disk), not the archive: said as such, naming the file.
              if (err instanceof Error && typeof (err as { path?: unknown }).path !== 'string') Object.assign(err, { path: file });
              throw wrap('EINTERNAL', `copying ${what} into ${tmp}`, err);
            } finally {
              await fh.close();
            }
            src.files.set(name, file);
            src.links.delete(name);
            continue;
          }
          entry.resume();
          if (entry.header.type === 'symlink' || entry.header.type === 'link') {
            const target = entry.header.linkname ?? '';
            // A symlink is relative to its directory; a hardlink names an archive member.
            const resolved = entry.header.type === 'link' ? target : path.posix.join(path.posix.dirname(name), target);
            src.links.set(name, cleanPath(resolved.startsWith('/') ? resolved.slice(1) : resolved));
          }
        }
      } catch (err) {
        if (!ex.destroyed) ex.destroy();
        throw (await fed) ?? err;
      }
      const failed = await fed;
      if (failed) throw failed;
      return src;
    } catch (err) {
      await src.close();
      throw wrap('EBADIMAGE', `reading ${what}`, err);
    }
  }

  private lookup(name: string): string | undefined {
    let n = cleanPath(name);
    for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
      const file = this.files.get(n);
      if (file) return file;
      const next = this.links.get(n);
      if (next === undefined) return undefined;
      n = next;
    }
    return undefined;
  }

  async has(name: string): Promise<boolean> {
    return this.lookup(name) !== undefined;
  }

  async size(name: string): Promise<number | undefined> {
    const f = this.lookup(name);
    return f === undefined ? undefined : (await fs.stat(f)).size;
  }

  async read(name: string, limit: number): Promise<Buffer> {
    const f = this.lookup(name);
    if (f === undefined) throw missing(name, this.what);
    return readLimited(f, name, this.what, limit);
  }

  open(name: string): Readable {
    const f = this.lookup(name);
    if (f === undefined) throw missing(name, this.what);
    return createReadStream(f);
  }

  async close(): Promise<void> {
    await removeTree(this.tmp);
  }
}

function missing(name: string, what: string): TsrunError {
  return new TsrunError('EBADIMAGE', `${what}: ${name} is missing`);
}

async function readLimited(file: string, name: string, what: string, limit: number): Promise<Buffer> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw missing(name, what);
    if (st.size > limit) throw new TsrunError('EBADIMAGE', `${what}: ${name} is too large (${st.size} bytes)`);
    return await fs.readFile(file);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') throw missing(name, what);
    throw err;
  }
}
