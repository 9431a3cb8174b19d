// Layer compression: which decompressor a media type needs, and sniffing by magic bytes for
// archives that do not say (docker save's layer.tar may be plain or gzip).
import { createRequire } from 'node:module';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { TsrunError } from '../errors.js';

export type Compression = 'none' | 'gzip' | 'zstd';

/**
 * The compression a layer media type declares. OCI: `...layer.v1.tar[+gzip|+zstd]` (also the
 * nondistributable variants); Docker: `...rootfs.diff.tar[.gzip]` and the foreign
 * (`rootfs.foreign.diff.tar.gzip`) Windows layers.
 */
export function compressionOf(mediaType: string): Compression {
  const m = mediaType.toLowerCase();
  const oci = /^application\/vnd\.oci\.image\.layer\.(?:nondistributable\.)?v1\.tar(\+gzip|\+zstd)?$/.exec(m);
  if (oci) return oci[1] === '+gzip' ? 'gzip' : oci[1] === '+zstd' ? 'zstd' : 'none';
  const docker = /^application\/vnd\.docker\.image\.rootfs\.(?:foreign\.)?diff\.tar(\.gzip|\.zstd)?$/.exec(m);
  if (docker) return docker[1] === '.gzip' ? 'gzip' : docker[1] === '.zstd' ? 'zstd' : 'none';
  throw new TsrunError('EBADIMAGE', `unsupported layer media type "${mediaType}"`);
}

/** A stream that turns the layer blob into its tar, or null when the blob is the tar. */
export function decompressor(mediaType: string): Transform | null {
  return transformFor(compressionOf(mediaType));
}

/** zlib's output chunk: 256 KiB rather than its default 16 KiB. Each chunk is a round trip to
 * libuv's thread pool, and a write(2) per file it holds a part of. */
const GUNZIP_CHUNK = 256 * 1024;

export function transformFor(c: Compression): Transform | null {
  if (c === 'gzip') return zlib.createGunzip({ chunkSize: GUNZIP_CHUNK });
  if (c === 'zstd') return zstdDecompressor();
  return null;
}

/** The bytes of `source` decompressed (the source itself for 'none'). A source error, or
 * corrupt data, ends the iteration with that error. */
export function decompress(source: AsyncIterable<Uint8Array>, c: Compression): AsyncIterable<Uint8Array> {
  const t = transformFor(c);
  if (!t) return source;
  // Not object mode: the readable pulls the next chunk only when the decompressor wants more.
  return pipeline(Readable.from(source, { objectMode: false }), t, () => {});
}

/**
 * A layer blob as it arrives, still compressed. Iterating it gives the tar, decompressed in
 * this thread, so any consumer of a tar stream can take it; the store's unpacker instead hands
 * `compressed` to its worker thread, which decompresses there (see unpack-worker.ts).
 */
export class CompressedTar implements AsyncIterable<Uint8Array> {
  constructor(
    readonly compressed: AsyncIterable<Uint8Array>,
    readonly compression: Compression,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return decompress(this.compressed, this.compression)[Symbol.asyncIterator]();
  }
}

// ---- zstd ------------------------------------------------------------------------------

type NativeZstd = () => Transform;
const nativeZstd = (zlib as unknown as { createZstdDecompress?: NativeZstd }).createZstdDecompress;

/**
 * zstd: Node's own zlib.createZstdDecompress where it exists (Node ≥ 22.15 / 23.8), else fzstd,
 * a maintained pure-JavaScript decoder that runs on Node 20. `impl` is for tests.
 */
export function zstdDecompressor(impl: 'auto' | 'native' | 'fzstd' = 'auto'): Transform {
  if (impl === 'native' || (impl === 'auto' && nativeZstd)) {
    if (!nativeZstd) throw new TsrunError('EKERNEL', `this Node.js (${process.version}) has no zlib zstd support`);
    return nativeZstd();
  }
  return new FzstdTransform();
}

export function hasNativeZstd(): boolean {
  return nativeZstd !== undefined;
}

interface FzstdDecompress {
  push(chunk: Uint8Array, final?: boolean): void;
}
type FzstdModule = { Decompress: new (ondata: (data: Uint8Array, final?: boolean) => void) => FzstdDecompress };

class FzstdTransform extends Transform {
  private readonly zstd: FzstdDecompress;

  constructor() {
    super();
    const { Decompress } = createRequire(import.meta.url)('fzstd') as FzstdModule;
    // fzstd hands out views of its own buffers: copy before passing them on.
    this.zstd = new Decompress((data) => {
      if (data.length > 0) this.push(Buffer.from(data));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done(this.feed(chunk, false));
  }

  override _flush(done: TransformCallback): void {
    done(this.feed(new Uint8Array(0), true));
  }

  private feed(chunk: Uint8Array, final: boolean): Error | null {
    try {
      this.zstd.push(chunk, final);
      return null;
    } catch (err) {
      return new TsrunError('EBADIMAGE', `zstd data is corrupt: ${(err as Error).message}`, { cause: err });
    }
  }
}

// ---- sniffing --------------------------------------------------------------------------

export type Sniffed = Compression | 'bzip2' | 'xz' | 'unknown';

/** What the first bytes of a blob say it is (docker's DetectCompression, plus tar). */
export function sniff(head: Uint8Array): Sniffed {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bzip2';
  if (head.length >= 6 && head[0] === 0xfd && Buffer.from(head.subarray(1, 6)).toString('latin1') === '7zXZ\0') return 'xz';
  if (isTarHeader(head)) return 'none';
  return 'unknown';
}

/** A ustar/GNU header at the start: "ustar" at offset 257, or a valid checksum (v7 tar). */
export function isTarHeader(head: Uint8Array): boolean {
  if (head.length < 512) return false;
  const magic = Buffer.from(head.subarray(257, 262)).toString('latin1');
  if (magic === 'ustar') return true;
  let sum = 8 * 32;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += head[i]!;
  const recorded = Number.parseInt(Buffer.from(head.subarray(148, 156)).toString('latin1').replace(/[\0 ]/g, ''), 8);
  return recorded === sum && head.some((b) => b !== 0);
}

/**
 * Reads the first bytes of `source`, decides by magic, and returns the decompressed stream
 * (the tar). An empty or unrecognized stream is EBADIMAGE with `what` in the message.
 */
export async function decompressSniffed(source: Readable, what: string): Promise<{ stream: Readable; compression: Compression }> {
  const head = await peek(source, 512);
  const kind = sniff(head);
  if (kind === 'bzip2' || kind === 'xz') throw new TsrunError('EBADIMAGE', `${what} is ${kind}-compressed, which is not supported (use gzip or zstd)`);
  if (kind === 'unknown') {
    throw new TsrunError('EBADIMAGE', head.length === 0 ? `${what} is empty` : `${what} is not a tar archive (nor gzip or zstd)`);
  }
  const rest = Readable.from(prepend(head, source), { objectMode: false });
  const t = transformFor(kind);
  return { stream: t ? pipeline(rest, t, () => {}) : rest, compression: kind };
}

async function* prepend(head: Buffer, source: Readable): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for await (const chunk of source) yield chunk as Buffer;
}

/** The first `n` bytes (fewer at the end of the stream), taken off `source`. */
async function peek(source: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = source.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= n) break;
      continue;
    }
    if (source.readableEnded) break;
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        source.off('readable', done);
        source.off('end', done);
        source.off('error', fail);
        resolve();
      };
      const fail = (err: Error): void => {
        source.off('readable', done);
        source.off('end', done);
        reject(err);
      };
      source.once('readable', done);
      source.once('end', done);
      source.once('error', fail);
    });
    if (source.readableEnded && source.readableLength === 0) break;
  }
  return Buffer.concat(chunks, total);
}
