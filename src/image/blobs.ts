// blobs/sha256/<hex>: content-addressed files (manifests, configs, compressed layers).
// A blob appears only whole and verified: written to <root>/tmp while hashed, checked against
// the expected digest and size, fsynced, then renamed into place.
// fs.promises rather than node:fs/promises: loaded on first use, not by every `run` (~2 ms).
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TsrunError, errnoOf } from '../errors.js';
import { Hasher, checkDigest, hexOf, mismatch, sha256, type Expected } from './digest.js';
import { tempName } from './fsutil.js';
import type { Digest } from './types.js';

const WRITE_BATCH = 1024 * 1024;

export class Blobs {
  constructor(private readonly root: string) {}

  path(digest: Digest): string {
    return path.join(this.root, 'blobs', 'sha256', hexOf(checkDigest(digest, 'blob')));
  }

  async has(digest: Digest): Promise<boolean> {
    return fs.stat(this.path(digest)).then((s) => s.isFile(), () => false);
  }

  async read(digest: Digest): Promise<Buffer> {
    try {
      return await fs.readFile(this.path(digest));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new TsrunError('ENOIMAGE', `blob ${digest} is not in the store`, { cause: err });
      throw err;
    }
  }

  stream(digest: Digest): Readable {
    return createReadStream(this.path(digest));
  }

  async write(source: AsyncIterable<Uint8Array>, expected: Expected): Promise<void> {
    const target = this.path(expected.digest);
    const tmp = path.join(this.root, 'tmp', tempName() + '.blob');
    try {
      const fh = await fs.open(tmp, 'wx', 0o644);
      const hasher = new Hasher();
      // Chunks are written a megabyte at a time: each write is a round trip to libuv's thread
      // pool, and during a pull that pool and the CPUs are busy with the layers' unpacking.
      let pending: Uint8Array[] = [];
      let pendingBytes = 0;
      const flush = async (): Promise<void> => {
        const batch = pending;
        pending = [];
        pendingBytes = 0;
        for (let done = 0, i = 0; i < batch.length; ) {
          // writev may write less than asked (a signal, a full disk): continue where it stopped.
          const { bytesWritten } = await fh.writev(i === 0 && done === 0 ? batch : [batch[i]!.subarray(done), ...batch.slice(i + 1)]);
          done += bytesWritten;
          while (i < batch.length && done >= batch[i]!.length) done -= batch[i++]!.length;
        }
      };
      try {
        for await (const chunk of source) {
          hasher.update(chunk);
          if (expected.size !== undefined && hasher.size > expected.size) {
            throw new TsrunError('EDIGEST', `blob ${expected.digest}: more than the expected ${expected.size} bytes`);
          }
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= WRITE_BATCH) await flush();
        }
        if (pendingBytes > 0) await flush();
        await fh.sync();
      } finally {
        await fh.close();
      }
      const bad = mismatch(`blob ${expected.digest}`, expected, { digest: hasher.digest(), size: hasher.size });
      if (bad) throw bad;
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      // A write's system error names no file (a full disk: "ENOSPC, write"): the one written.
      if (errnoOf(err) !== undefined && !(err instanceof TsrunError) && (err as NodeJS.ErrnoException).path === undefined) {
        (err as NodeJS.ErrnoException).path = tmp;
      }
      throw err;
    }
  }

  /**
   * Takes a file this process wrote itself (in the store's tmp dir, same file system) and hashed
   * as it wrote it: synced and renamed into place, not copied. Only its size is checked again;
   * bytes from elsewhere go through `write`, which hashes what it stores.
   */
  async adopt(file: string, expected: { digest: Digest; size: number }): Promise<void> {
    const fh = await fs.open(file, 'r+');
    try {
      const { size } = await fh.stat();
      if (size !== expected.size) throw new TsrunError('EDIGEST', `blob ${expected.digest}: ${size} bytes on disk, ${expected.size} written`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(file, this.path(expected.digest));
  }

  async writeBytes(bytes: Uint8Array, expected?: Expected): Promise<Digest> {
    const digest = sha256(bytes);
    if (expected) {
      const bad = mismatch(`blob ${expected.digest}`, expected, { digest, size: bytes.length });
      if (bad) throw bad;
    }
    if (!(await this.has(digest))) await this.write(once(bytes), { digest, size: bytes.length });
    return digest;
  }

  async remove(digest: Digest): Promise<void> {
    await fs.rm(this.path(digest), { force: true });
  }

  /** Every blob's digest (garbage collection). */
  async list(): Promise<Digest[]> {
    const names = await fs.readdir(path.join(this.root, 'blobs', 'sha256')).catch(() => [] as string[]);
    return names.filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}` as Digest);
  }

  /** Count and total size, for `usage`. */
  async usage(): Promise<{ count: number; size: number }> {
    const dir = path.join(this.root, 'blobs', 'sha256');
    const names = await fs.readdir(dir);
    let size = 0;
    for (const b of names) size += (await fs.stat(path.join(dir, b)).catch(() => undefined))?.size ?? 0;
    return { count: names.length, size };
  }
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
