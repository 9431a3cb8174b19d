import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { compressionOf, decompressSniffed, decompressor, hasNativeZstd, sniff, zstdDecompressor } from '../../src/image/compression.js';
import { makeTar } from '../fixtures/tar.js';

const tar = makeTar([{ name: 'a', content: 'x'.repeat(100_000) }, { name: 'b', type: 'symlink', linkname: 'a' }]);
const haveZstdCli = (() => {
  try {
    execFileSync('zstd', ['--version']);
    return true;
  } catch {
    return false;
  }
})();
const zstd = (b: Buffer) => execFileSync('zstd', ['-q', '-c'], { input: b });

async function collect(s: NodeJS.ReadableStream | Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) out.push(c);
  return Buffer.concat(out);
}

function through(t: NodeJS.ReadWriteStream, input: Buffer): Promise<Buffer> {
  const src = Readable.from([input.subarray(0, 1000), input.subarray(1000)]);
  return collect(src.pipe(t));
}

describe('compression', () => {
  it('maps layer media types', () => {
    expect(compressionOf('application/vnd.oci.image.layer.v1.tar')).toBe('none');
    expect(compressionOf('application/vnd.oci.image.layer.v1.tar+gzip')).toBe('gzip');
    expect(compressionOf('application/vnd.oci.image.layer.v1.tar+zstd')).toBe('zstd');
    expect(compressionOf('application/vnd.oci.image.layer.nondistributable.v1.tar+gzip')).toBe('gzip');
    expect(compressionOf('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe('gzip');
    expect(compressionOf('application/vnd.docker.image.rootfs.foreign.diff.tar.gzip')).toBe('gzip');
    expect(decompressor('application/vnd.oci.image.layer.v1.tar')).toBeNull();
    expect(() => compressionOf('application/vnd.oci.image.layer.v1.tar+lz4')).toThrow(expect.objectContaining({ code: 'EBADIMAGE' }));
  });

  it('sniffs magic bytes', () => {
    expect(sniff(zlib.gzipSync(tar))).toBe('gzip');
    expect(sniff(tar)).toBe('none');
    expect(sniff(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(sniff(Buffer.from('BZh91AY'))).toBe('bzip2');
    expect(sniff(Buffer.from('\xfd7zXZ\0', 'latin1'))).toBe('xz');
    expect(sniff(Buffer.from('{"not":"a tar"}'))).toBe('unknown');
  });

  it('gunzips a gzip layer', async () => {
    expect(await through(decompressor('application/vnd.oci.image.layer.v1.tar+gzip')!, zlib.gzipSync(tar))).toEqual(tar);
  });

  it.runIf(haveZstdCli)('decompresses zstd with fzstd (any Node)', async () => {
    expect(await through(zstdDecompressor('fzstd'), zstd(tar))).toEqual(tar);
    // Two frames back to back, as a parallel compressor may write.
    expect(await through(zstdDecompressor('fzstd'), Buffer.concat([zstd(tar), zstd(tar)]))).toEqual(Buffer.concat([tar, tar]));
  });

  it.runIf(haveZstdCli && hasNativeZstd())('decompresses zstd with node:zlib where Node has it', async () => {
    expect(await through(zstdDecompressor('native'), zstd(tar))).toEqual(tar);
  });

  it.skipIf(hasNativeZstd())('says so when this Node has no native zstd', () => {
    expect(() => zstdDecompressor('native')).toThrow(expect.objectContaining({ code: 'EKERNEL' }));
  });

  it.runIf(haveZstdCli)('reports truncated zstd data', async () => {
    // fzstd does not check zstd's own checksum; flipped bits are caught by the diff_id check.
    const z = zstd(tar);
    await expect(through(zstdDecompressor('fzstd'), z.subarray(0, z.length - 10))).rejects.toMatchObject({ code: 'EBADIMAGE' });
  });

  it('decompresses by sniffing, and refuses what is not a tar', async () => {
    for (const input of [tar, zlib.gzipSync(tar), ...(haveZstdCli ? [zstd(tar)] : [])]) {
      const { stream } = await decompressSniffed(Readable.from([input]), 'test');
      expect(await collect(stream)).toEqual(tar);
    }
    await expect(decompressSniffed(Readable.from([Buffer.from('hello')]), 'x.tar')).rejects.toMatchObject({
      code: 'EBADIMAGE',
      message: 'x.tar is not a tar archive (nor gzip or zstd)',
    });
    await expect(decompressSniffed(Readable.from([]), 'x.tar')).rejects.toMatchObject({ message: 'x.tar is empty' });
  });
});
