// A layer tar this process made (a container's changes, a build's COPY) into the store: gzip
// for the blob store and the unpacked layer dir, both read from the tar file at once, so the
// blob just written is never gunzipped again (the unpack still checks the tar against its
// diff_id). The tar is a file first because its diff_id names the layer before the unpack starts.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { TsrunError } from '../errors.js';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { chainIdOf, chainIds, Hasher } from './digest.js';
import type { ImageStore } from './store.js';
import type { Digest } from './types.js';

export const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';
/** A layer kept as its plain tar: a build's (push compresses it, as docker and buildah do). */
export const PLAIN_LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar';

/** Reads of a layer's tar: larger than the default 64 KiB, fewer trips through the streams. */
const READ_CHUNK = 1024 * 1024;

export interface StoredLayer {
  diffId: Digest;
  digest: Digest;
  /** Bytes of the gzip blob. */
  size: number;
  mediaType: string;
  chainId: Digest;
}

/**
 * Stores the tar at `tarPath` (whose sha256 is `diffId`) as a layer on top of `parentDiffIds`:
 * the gzip blob (made in `tmp`, a directory of the store's tmp, and renamed into blobs/) and the
 * unpacked layer. What it newly creates is recorded in `created`, for store.discard on failure.
 */
export async function storeLayerTar(
  store: ImageStore,
  tarPath: string,
  diffId: Digest,
  parentDiffIds: Digest[],
  tmp: string,
  created: { layers: Digest[]; blobs: Digest[] },
  opts: { compress?: boolean } = {},
): Promise<StoredLayer> {
  const parentChain = chainIds(parentDiffIds).at(-1) ?? null;
  const chainId = chainIdOf(parentChain, diffId);
  if (opts.compress === false) {
    // The tar itself is the blob (its digest is the diff ID): unpacked, then renamed into place.
    if (!(await store.layer(chainId))) created.layers.push(chainId);
    await store.unpackLayer(diffId, parentChain, createReadStream(tarPath, { highWaterMark: READ_CHUNK }));
    const size = (await stat(tarPath)).size;
    if (!(await store.hasBlob(diffId))) {
      created.blobs.push(diffId);
      await store.adoptBlob(tarPath, { digest: diffId, size });
    }
    return { diffId, digest: diffId, size, mediaType: PLAIN_LAYER_MEDIA_TYPE, chainId };
  }
  const gzPath = join(tmp, `${diffId.slice(7, 19)}.tar.gz`);
  const gzHash = new Hasher();
  if (!(await store.layer(chainId))) created.layers.push(chainId);
  const [gzipped, unpacked] = await Promise.allSettled([
    pipeline(createReadStream(tarPath, { highWaterMark: READ_CHUNK }), createGzip(), tap(gzHash), createWriteStream(gzPath)),
    store.unpackLayer(diffId, parentChain, createReadStream(tarPath, { highWaterMark: READ_CHUNK })),
  ]);
  if (unpacked.status === 'rejected') throw unpacked.reason;
  if (gzipped.status === 'rejected') throw gzipped.reason;
  const digest = gzHash.digest();
  if (!(await store.hasBlob(digest))) {
    created.blobs.push(digest);
    await store.adoptBlob(gzPath, { digest, size: gzHash.size });
  }
  return { diffId, digest, size: gzHash.size, mediaType: LAYER_MEDIA_TYPE, chainId };
}

/**
 * Stores a layer tar as it is being made (a build's COPY): the stream goes to the unpacker and
 * into a blob file at once, so making the tar and unpacking it overlap. The blob is the plain
 * tar (its digest is the diff ID): compressing is left to push, which is when docker and buildah
 * do it too — gzip is the slowest stage here (~35 MB/s a core).
 */
export async function storeLayerStream(
  store: ImageStore,
  tar: Readable,
  parentDiffIds: Digest[],
  tmp: string,
  created: { layers: Digest[]; blobs: Digest[] },
): Promise<StoredLayer> {
  const parentChain = chainIds(parentDiffIds).at(-1) ?? null;
  const blobPath = join(tmp, 'layer.tar');
  const hash = new Hasher();
  const toUnpack = new PassThrough({ highWaterMark: READ_CHUNK });
  const toBlob = new PassThrough({ highWaterMark: READ_CHUNK });
  tar.on('error', (err) => {
    toUnpack.destroy(err);
    toBlob.destroy(err);
  });
  tar.pipe(toUnpack);
  tar.pipe(toBlob);
  const [written, unpacked] = await Promise.allSettled([
    pipeline(toBlob, tap(hash), createWriteStream(blobPath)),
    store.unpackOwnLayer(parentChain, toUnpack),
  ]);
  if (unpacked.status === 'rejected') {
    toBlob.destroy();
    throw unpacked.reason;
  }
  if (written.status === 'rejected') throw written.reason;
  const layer = unpacked.value;
  created.layers.push(layer.chainId);
  const digest = hash.digest();
  if (digest !== layer.diffId) throw new TsrunError('EINTERNAL', `layer of a build step: the blob hashes to ${digest}, the unpacked tar to ${layer.diffId}`);
  if (!(await store.hasBlob(digest))) {
    created.blobs.push(digest);
    await store.adoptBlob(blobPath, { digest, size: hash.size });
  }
  return { diffId: layer.diffId, digest, size: hash.size, mediaType: PLAIN_LAYER_MEDIA_TYPE, chainId: layer.chainId };
}

/** Passes chunks on, hashing them. */
export function tap(h: Hasher): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
}
