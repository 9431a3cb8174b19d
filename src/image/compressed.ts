// The gzip of a layer kept as a plain tar (a build's: compressing is the slowest part of making a
// layer, so build leaves it to push, as docker and buildah do). Made once, kept in the blob store,
// and remembered in `compressed/<hex of the plain digest>` so the next push reuses it.
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { TsrunError } from '../errors.js';
import { removeTree, writeFileAtomic } from './fsutil.js';
import { compressionOf } from './compression.js';
import { Hasher, hexOf, isDigest } from './digest.js';
import { tap } from './layer-tar.js';
import type { Descriptor, Digest, ImageManifest } from './types.js';

interface Store {
  readonly root: string;
  hasBlob(d: Digest): Promise<boolean>;
  blobPath(d: Digest): string;
  makeTempDir(label?: string): Promise<string>;
  adoptBlob(file: string, expected: { digest: Digest; size: number }): Promise<void>;
}

/** The manifest with each plain-tar layer replaced by its gzip (the same object when none is plain). */
export async function withCompressedLayers(store: Store, manifest: ImageManifest): Promise<ImageManifest> {
  if (!manifest.layers.some(isPlain)) return manifest;
  const layers: Descriptor[] = [];
  for (const l of manifest.layers) layers.push(isPlain(l) ? await compressed(store, l) : l);
  return { ...manifest, layers };
}

function isPlain(d: Descriptor): boolean {
  return compressionOf(d.mediaType) === 'none' && !/foreign|nondistributable/.test(d.mediaType) && d.urls === undefined;
}

async function compressed(store: Store, plain: Descriptor): Promise<Descriptor> {
  const mediaType = plain.mediaType.startsWith('application/vnd.docker.')
    ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
    : 'application/vnd.oci.image.layer.v1.tar+gzip';
  const record = path.join(store.root, 'compressed', hexOf(plain.digest));
  const known = await fs.readFile(record, 'utf8').then((t) => JSON.parse(t) as { digest: Digest; size: number }, () => undefined);
  if (known && isDigest(known.digest) && (await store.hasBlob(known.digest))) return { mediaType, digest: known.digest, size: known.size };

  if (!(await store.hasBlob(plain.digest))) {
    throw new TsrunError('EBADIMAGE', `layer ${plain.digest} has only its unpacked copy in the store (a docker-archive loaded by an older tsrun kept no tars): load the image again to push it`);
  }
  const tmp = await store.makeTempDir('gzip');
  try {
    const out = path.join(tmp, 'layer.tar.gz');
    const hash = new Hasher();
    await pipeline(createReadStream(store.blobPath(plain.digest)), createGzip(), tap(hash), createWriteStream(out));
    const digest = hash.digest();
    if (!(await store.hasBlob(digest))) await store.adoptBlob(out, { digest, size: hash.size });
    await fs.mkdir(path.dirname(record), { recursive: true, mode: 0o700 });
    await writeFileAtomic(record, JSON.stringify({ digest, size: hash.size }) + '\n', 0o600);
    return { mediaType, digest, size: hash.size };
  } finally {
    await removeTree(tmp).catch(() => {});
  }
}
