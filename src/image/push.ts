// `tsrun push`: the image's blobs, then its manifest, to the registry its name points at.
//
// For each layer (and the config): HEAD — does the registry have it already? If not, and the
// blob was pulled from another repository of the same registry, ask for a cross-repository
// mount (POST ?mount=&from=: the registry links it, no bytes move). Otherwise upload it: one
// PUT for a small blob, or PATCH chunks then PUT ?digest= for a large one. The manifest goes
// last, so a registry never serves a manifest whose blobs it does not have.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { RegistryClient, type ClientOptions } from '../registry-client/client.js';
import { MediaType, parseManifest, sha256 } from '../registry-client/manifest.js';
import { formatReference, normalizeName, parseReference, type Reference } from '../registry-client/reference.js';
import type { Repository } from '../registry-client/remote.js';
import { addBlobSource, blobSources } from '../registry-client/sources.js';
import { inContext, shortId, sourcesDir } from './pull.js';
import { withCompressedLayers } from './compressed.js';
import type { Descriptor, Digest, ImageRecord } from './types.js';

/** The part of ImageStore (store.ts) that pushing uses. */
export interface PushStore {
  readonly root: string;
  hasBlob(d: Digest): Promise<boolean>;
  blobPath(d: Digest): string;
  readBlob(d: Digest): Promise<Buffer>;
  resolve(nameOrId: string): Promise<ImageRecord | undefined>;
  /** For layers kept as plain tars (a build's): their gzip made here, then kept (compressed.ts). */
  makeTempDir(label?: string): Promise<string>;
  adoptBlob(file: string, expected: { digest: Digest; size: number }): Promise<void>;
}

export type PushStatus = 'Preparing' | 'Waiting' | 'Pushing' | 'Pushed' | 'Layer already exists' | 'Mounted' | 'Retrying';

export interface PushEvent {
  id: string;
  status: PushStatus;
  current?: number;
  total?: number;
  /** Mounted: the repository it came from. */
  detail?: string;
}

export interface PushOptions extends ClientOptions {
  /** Blobs larger than this go up in chunks of this size (PATCH); smaller ones in one PUT. */
  chunkSize?: number;
  maxConcurrentUploads?: number;
  client?: RegistryClient;
}

export interface PushResult {
  name: string;
  /** The tag, or the digest when pushed by digest. */
  tag: string;
  digest: Digest;
  size: number;
}

const DEFAULT_CHUNK = 32 * 1024 * 1024;
const DEFAULT_UPLOADS = 5; // docker's max-concurrent-uploads

export async function pushImage(
  store: PushStore,
  input: string,
  options: PushOptions = {},
  onProgress: (e: PushEvent) => void = () => {},
): Promise<PushResult> {
  const ref = parseReference(input);
  const image = (await store.resolve(normalizeName(input))) ?? (await store.resolve(input));
  if (!image) throw new TsrunError('ENOIMAGE', `push ${input}: an image does not exist locally with the tag: ${input}`);
  const client = options.client ?? (await RegistryClient.open('push', options));
  try {
    return await pushWith(client, store, ref, image, options, onProgress);
  } catch (err) {
    throw inContext(err, `push ${input}`);
  } finally {
    if (!options.client) await client.close();
  }
}

async function pushWith(
  client: RegistryClient,
  store: PushStore,
  ref: Reference,
  image: ImageRecord,
  options: PushOptions,
  onProgress: (e: PushEvent) => void,
): Promise<PushResult> {
  const name = formatReference(ref);
  const repo = client.registry(ref.registry).repository(ref.repository, ['pull', 'push']);
  const storedBytes = await store.readBlob(image.manifestDigest);
  const parsed = parseManifest(storedBytes, undefined, name);
  if (parsed.kind !== 'manifest') throw new TsrunError('EBADIMAGE', `${name}: the stored manifest is an index`);
  // Layers kept as plain tars (a build's) go up gzip-compressed, as docker pushes them: the
  // manifest sent names the compressed blobs (its digest is not the local one).
  const manifest = await withCompressedLayers(store, parsed.manifest);
  const manifestBytes = manifest === parsed.manifest ? storedBytes : Buffer.from(JSON.stringify(manifest));
  const here = `${ref.registry}/${ref.repository}`;

  for (const l of manifest.layers) onProgress({ id: shortId(l.digest), status: 'Preparing' });
  for (const l of manifest.layers) onProgress({ id: shortId(l.digest), status: 'Waiting' });
  // Layers in parallel, the config with them (docker shows no line for it).
  const blobs = [...manifest.layers, manifest.config];
  let next = 0;
  const worker = async () => {
    while (next < blobs.length) {
      const desc = blobs[next++]!;
      const show = desc !== manifest.config;
      await pushBlob(store, repo, desc, here, options.chunkSize ?? DEFAULT_CHUNK, (e) => show && onProgress(e));
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(options.maxConcurrentUploads ?? DEFAULT_UPLOADS, blobs.length) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;

  const reference = ref.tag ?? ref.digest ?? 'latest';
  const mediaType = manifest.mediaType ?? MediaType.ociManifest;
  const digest = sha256(manifestBytes);
  const answered = await repo.putManifest(reference, manifestBytes, mediaType);
  if (answered && answered !== digest) {
    throw new TsrunError('EDIGEST', `${name}: the registry stored the manifest as ${answered}, expected ${digest}`);
  }
  await Promise.all(blobs.map((b) => addBlobSource(sourcesDir(store), b.digest, here).catch(() => {})));
  return { name, tag: reference, digest, size: manifestBytes.length };
}

async function pushBlob(
  store: PushStore,
  repo: Repository,
  desc: Descriptor,
  here: string,
  chunkSize: number,
  onProgress: (e: PushEvent) => void,
): Promise<void> {
  const id = shortId(desc.digest);
  if (await repo.blobExists(desc.digest)) return onProgress({ id, status: 'Layer already exists' });
  if (!(await store.hasBlob(desc.digest))) {
    throw new TsrunError(
      'EBADIMAGE',
      `blob ${desc.digest} is not in the store (only its unpacked layer is), so it cannot be pushed`,
    );
  }
  // A mount is only possible within the same registry.
  const registryPrefix = here.slice(0, here.indexOf('/') + 1);
  const from = (await blobSources(sourcesDir(store), desc.digest)).find((s) => s.startsWith(registryPrefix) && s !== here);
  const started = await repo.startUpload(desc.digest, from?.slice(registryPrefix.length));
  if (started === 'mounted') return onProgress({ id, status: 'Mounted', detail: from!.slice(registryPrefix.length) });

  const path = store.blobPath(desc.digest);
  const progress = (current: number) => onProgress({ id, status: 'Pushing', current, total: desc.size });
  if (desc.size <= chunkSize) {
    await repo.finishUpload(started, desc.digest, { size: desc.size, open: () => counted(createReadStream(path), progress) });
  } else {
    let url = started;
    const fh = await open(path, 'r');
    try {
      for (let offset = 0; offset < desc.size; offset += chunkSize) {
        const chunk = Buffer.alloc(Math.min(chunkSize, desc.size - offset));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, offset);
        if (bytesRead !== chunk.length) throw new TsrunError('EDIGEST', `blob ${desc.digest} in the store is shorter than ${desc.size} bytes`);
        url = await repo.patchChunk(url, chunk, offset);
        progress(offset + chunk.length);
      }
    } finally {
      await fh.close();
    }
    await repo.finishUpload(url, desc.digest);
  }
  onProgress({ id, status: 'Pushed' });
}

/** Reports bytes as they leave, throttled to one report per 64 KiB. */
function counted(stream: Readable, report: (n: number) => void): Readable {
  let n = 0;
  let shown = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n - shown >= 65536) (shown = n), report(n);
      cb(null, chunk);
    },
    flush(cb) {
      report(n);
      cb();
    },
  });
  stream.on('error', (err) => t.destroy(err));
  return stream.pipe(t);
}
