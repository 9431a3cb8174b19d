// tar-stream, with one fix: binary-safe PAX values for extended attributes.
//
// tar-stream decodes every PAX record as UTF-8, which mangles binary xattr values such as
// `SCHILY.xattr.security.capability` (the file capabilities of `ping`, for instance). We
// replace its PAX decoder once with one that keeps `SCHILY.xattr.*` values as latin1
// strings — one char per byte — so `Buffer.from(value, 'latin1')` gives the bytes back.
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

const tarStream = require('tar-stream') as { extract(): Extract; pack(): Pack };
// extract.js calls `headers.decodePax(...)` through this same module object at run time.
const headers = require(path.join(path.dirname(require.resolve('tar-stream')), 'headers.js')) as {
  decodePax: (buf: Buffer) => Record<string, string>;
  tsrunBinaryPax?: boolean;
};

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

if (!headers.tsrunBinaryPax) {
  headers.decodePax = decodePax;
  headers.tsrunBinaryPax = true;
}

export const extract = (): Extract => tarStream.extract();
export const pack = (): Pack => tarStream.pack();

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
