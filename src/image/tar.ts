// Reading and writing tar archives.
//
// tar-stream, with one fix: binary-safe PAX values for extended attributes. tar-stream decodes
// and encodes every PAX record as UTF-8, which mangles binary xattr values such as
// `SCHILY.xattr.security.capability` (the file capabilities of `ping`, for instance). We
// replace its PAX decoder and encoder once with ones that carry `SCHILY.xattr.*` values as
// latin1 strings — one char per byte — so `Buffer.from(value, 'latin1')` gives the bytes back.
//
// And TarReader, the layer unpacker's own reader: the same formats and checks as tar-stream's
// extract, and its header decoder, but synchronous and push-based. A layer holds thousands
// of small files; a stream and a few promises per entry cost more CPU than the entry's own
// system calls, and their code is compiled anew in each unpack worker.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** A tar header as tar-stream parses it (its own typings depend on streamx's). */
export interface Header {
  name: string;
  size: number;
  mode: number;
  mtime: Date;
  type: 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file' | null;
  linkname: string | null;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  devmajor: number;
  devminor: number;
  pax?: Record<string, string> | null;
}

export interface Entry extends AsyncIterable<Buffer> {
  header: Header;
  resume(): unknown;
}

export interface Extract extends NodeJS.EventEmitter, AsyncIterable<Entry> {
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(err?: Error): void;
  readonly destroyed: boolean;
}

export type PackHeader = Partial<Header> & { name: string };

export interface Pack extends NodeJS.EventEmitter, AsyncIterable<Buffer> {
  entry(header: PackHeader, content?: string | Uint8Array, callback?: (err?: Error | null) => void): NodeJS.WritableStream;
  finalize(): void;
}

// tar-stream's entry point (with streamx and its helpers, ~11 ms to load in a fresh unpack
// worker) only where a tar is made or extracted with it; TarReader needs its headers alone.
let tarStream: { extract(): Extract; pack(): Pack } | undefined;
const tarStreamModule = () => (tarStream ??= require('tar-stream') as { extract(): Extract; pack(): Pack });
// extract.js calls `headers.decodePax(...)` through this same module object at run time.
const headers = require(path.join(path.dirname(require.resolve('tar-stream')), 'headers.js')) as {
  decodePax: (buf: Buffer) => Record<string, string>;
  encodePax: (opts: { name?: string; linkname?: string | null; pax?: Record<string, string> | null }) => Buffer;
  decode: (block: Buffer, filenameEncoding: string, allowUnknownFormat: boolean) => RawHeader | null;
  decodeLongPath: (buf: Buffer, encoding: string) => string;
  tsrunBinaryPax?: boolean;
};

/** What tar-stream's header decoder returns: also the long-header types, and any type null. */
type RawHeader = Omit<Header, 'type'> & { type: Header['type'] | 'pax-header' | 'pax-global-header' | 'gnu-long-path' | 'gnu-long-link-path' };

const XATTR_PREFIX = 'SCHILY.xattr.';

function decodePax(buf: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  // Each record is "<length> <key>=<value>\n", length counting the whole record.
  while (buf.length > 0) {
    const space = buf.indexOf(0x20);
    if (space <= 0) return result;
    const len = Number.parseInt(buf.subarray(0, space).toString('latin1'), 10);
    if (!(len > space + 1) || len > buf.length) return result;
    const record = buf.subarray(space + 1, len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) return result;
    const key = record.subarray(0, eq).toString('utf8');
    const value = record.subarray(eq + 1);
    result[key] = key.startsWith(XATTR_PREFIX) ? value.toString('latin1') : value.toString('utf8');
    buf = buf.subarray(len);
  }
  return result;
}

/** One PAX record: "<length> <key>=<value>\n", the length counting its own digits. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + String(body.length).length;
  if (String(len).length !== String(body.length).length) len = body.length + String(len).length;
  return Buffer.concat([Buffer.from(String(len), 'latin1'), body]);
}

/** tar-stream's encoder (path, linkpath, then the header's pax records), binary-safe. */
function encodePax(opts: { name?: string; linkname?: string | null; pax?: Record<string, string> | null }): Buffer {
  const records: Buffer[] = [];
  if (opts.name) records.push(paxRecord('path', Buffer.from(opts.name, 'utf8')));
  if (opts.linkname) records.push(paxRecord('linkpath', Buffer.from(opts.linkname, 'utf8')));
  for (const [key, value] of Object.entries(opts.pax ?? {})) {
    records.push(paxRecord(key, Buffer.from(value, key.startsWith(XATTR_PREFIX) ? 'latin1' : 'utf8')));
  }
  return Buffer.concat(records);
}

if (!headers.tsrunBinaryPax) {
  headers.decodePax = decodePax;
  headers.encodePax = encodePax;
  headers.tsrunBinaryPax = true;
}

export const extract = (): Extract => tarStreamModule().extract();
export const pack = (): Pack => tarStreamModule().pack();

/** The PAX records of an entry (tar-stream keeps them in `header.pax`). */
export function paxOf(header: Header): Record<string, string> | undefined {
  return header.pax ?? undefined;
}

/** Extended attributes carried as `SCHILY.xattr.<name>` PAX records (GNU tar, Go, docker). */
export function xattrsOf(header: Header): Array<[string, Buffer]> {
  const pax = paxOf(header);
  if (!pax) return [];
  const out: Array<[string, Buffer]> = [];
  for (const [key, value] of Object.entries(pax)) {
    if (key.startsWith(XATTR_PREFIX)) out.push([key.slice(XATTR_PREFIX.length), Buffer.from(value, 'latin1')]);
  }
  return out;
}

/** The entry's owner: PAX `uid`/`gid` when present (ids above the ustar field's range). */
export function uidOf(h: Header): number {
  const pax = paxOf(h)?.uid;
  return pax !== undefined ? Number(pax) : h.uid;
}

export function gidOf(h: Header): number {
  const pax = paxOf(h)?.gid;
  return pax !== undefined ? Number(pax) : h.gid;
}

/** Seconds since the epoch; PAX `mtime` keeps sub-second precision. */
export function mtimeOf(h: Header): number {
  const pax = paxOf(h)?.mtime;
  if (pax !== undefined && Number.isFinite(Number(pax))) return Number(pax);
  return h.mtime.getTime() / 1000;
}

/** PAX records carrying extended attributes, for a header's `pax` (see xattrsOf). */
export function xattrPax(xattrs: Array<[string, Buffer]>): Record<string, string> {
  const pax: Record<string, string> = {};
  for (const [name, value] of xattrs) pax[XATTR_PREFIX + name] = value.toString('latin1');
  return pax;
}

/**
 * Writes `source` into the extractor with backpressure, then ends it. Never rejects: a source
 * error destroys the extractor (so its iteration fails) and is returned. `onChunk` sees every
 * byte, including any after the end-of-archive blocks.
 */
export async function feed(source: AsyncIterable<Uint8Array>, ex: Extract, onChunk?: (chunk: Uint8Array) => void): Promise<unknown> {
  try {
    for await (const chunk of source) {
      if (ex.destroyed) return undefined;
      onChunk?.(chunk);
      if (!ex.write(chunk)) await drained(ex);
    }
    ex.end();
    return undefined;
  } catch (err) {
    ex.destroy(err instanceof Error ? err : new Error(String(err)));
    return err;
  }
}

function drained(ex: Extract): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      ex.off('drain', done);
      ex.off('close', done);
      resolve();
    };
    ex.on('drain', done);
    ex.on('close', done);
  });
}

// ---- TarReader ---------------------------------------------------------------------------

/** Where TarReader delivers an archive: each entry's header, then its data, then its end. */
export interface TarSink {
  entry(header: Header): void;
  /** Part of the entry's data: a view into the pushed chunk, valid only during the call. */
  data(chunk: Buffer): void;
  end(): void;
}

const BLOCK = 512;
/** tar-stream's limit on a PAX or GNU long-name record. */
const MAX_LONG_HEADER = 4 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Reads a tar archive pushed in chunks of any size, calling `sink` as it goes. Throws, from
 * push() or finish(), on a corrupt archive (with tar-stream's messages) or whatever the sink
 * throws. Like tar-stream, it reads on past zero blocks to the end of the input.
 */
export class TarReader {
  /** A header or long-header record split across chunks, being gathered. */
  private partial: Buffer[] = [];
  private partialSize = 0;
  /** What the next bytes are: a header; a long header's record; an entry's data; padding. */
  private state: 'header' | 'long' | 'data' | 'pad' = 'header';
  private missing = BLOCK;
  private padding = 0;
  private long: RawHeader | undefined;
  private pax: Record<string, string> | null = null;
  private paxGlobal: Record<string, string> | null = null;
  private gnuLongPath: string | null = null;
  private gnuLongLinkPath: string | null = null;

  constructor(private readonly sink: TarSink) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.state === 'data') {
        const n = Math.min(this.missing, chunk.length - off);
        this.sink.data(chunk.subarray(off, off + n));
        off += n;
        this.missing -= n;
        if (this.missing === 0) this.endEntry();
        continue;
      }
      if (this.state === 'pad') {
        const n = Math.min(this.padding, chunk.length - off);
        off += n;
        this.padding -= n;
        if (this.padding === 0) this.expectHeader();
        continue;
      }
      // A header block or a long-header record: whole, from this chunk or gathered.
      const n = Math.min(this.missing - this.partialSize, chunk.length - off);
      let whole: Buffer | undefined;
      if (this.partialSize === 0 && n === this.missing) {
        whole = chunk.subarray(off, off + n);
      } else {
        this.partial.push(chunk.subarray(off, off + n));
        this.partialSize += n;
        if (this.partialSize === this.missing) {
          whole = Buffer.concat(this.partial, this.partialSize);
          this.partial = [];
          this.partialSize = 0;
        }
      }
      off += n;
      if (whole) {
        if (this.state === 'header') this.header(whole);
        else this.longHeader(whole);
      } else {
        // Gathered bytes are copies-to-be of views into chunks the caller may reuse.
        this.partial[this.partial.length - 1] = Buffer.from(this.partial[this.partial.length - 1]!);
      }
    }
  }

  /** The input ended: it must end between entries, on a block boundary. */
  finish(): void {
    if (this.state !== 'header' || this.partialSize > 0) throw new Error('Unexpected end of data');
  }

  private expectHeader(): void {
    this.state = 'header';
    this.missing = BLOCK;
  }

  private header(block: Buffer): void {
    const h = headers.decode(block, 'utf-8', false);
    if (!h) return; // a zero block: end-of-archive marker or padding
    // Stricter than tar-stream: a size that is not a whole number (a malformed base-256 field
    // decodes to null) is refused, never read as 0.
    if (!validSize(h.size)) throw new Error('Invalid header');
    switch (h.type) {
      case 'gnu-long-path':
      case 'gnu-long-link-path':
      case 'pax-global-header':
      case 'pax-header':
        if (h.size > MAX_LONG_HEADER) throw new Error('Header exceeds max size');
        this.long = h;
        this.state = 'long';
        this.missing = h.size;
        this.padding = overflow(h.size);
        if (h.size === 0) this.longHeader(EMPTY);
        return;
    }
    if (this.gnuLongPath !== null) h.name = this.gnuLongPath;
    if (this.gnuLongLinkPath !== null) h.linkname = this.gnuLongLinkPath;
    this.gnuLongPath = this.gnuLongLinkPath = null;
    if (this.pax) {
      if (this.pax.path) h.name = this.pax.path;
      if (this.pax.linkpath) h.linkname = this.pax.linkpath;
      if (this.pax.size) h.size = Number.parseInt(this.pax.size, 10);
      h.pax = this.pax;
      this.pax = null;
    }
    if (!validSize(h.size)) throw new Error('Invalid header');
    this.sink.entry(h as Header);
    // As tar-stream: a directory has no data, whatever its size field says.
    const size = h.type === 'directory' ? 0 : h.size;
    if (size === 0) {
      this.sink.end();
      this.expectHeader();
      return;
    }
    this.state = 'data';
    this.missing = size;
    this.padding = overflow(size);
  }

  private longHeader(record: Buffer): void {
    const h = this.long!;
    this.long = undefined;
    if (h.type === 'gnu-long-path') this.gnuLongPath = headers.decodeLongPath(record, 'utf-8');
    else if (h.type === 'gnu-long-link-path') this.gnuLongLinkPath = headers.decodeLongPath(record, 'utf-8');
    else if (h.type === 'pax-global-header') this.paxGlobal = decodePax(record);
    else this.pax = this.paxGlobal === null ? decodePax(record) : { ...this.paxGlobal, ...decodePax(record) };
    this.afterRecord();
  }

  private endEntry(): void {
    this.sink.end();
    this.afterRecord();
  }

  private afterRecord(): void {
    if (this.padding > 0) this.state = 'pad';
    else this.expectHeader();
  }
}

function validSize(size: unknown): size is number {
  return typeof size === 'number' && Number.isSafeInteger(size) && size >= 0;
}

/** Bytes of padding after `size` bytes of data, up to the next block. */
function overflow(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}
