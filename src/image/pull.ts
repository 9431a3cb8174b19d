// `tsrun pull`: manifest → config → layers, into the store.
//
// Layers download in parallel (3 by default, largest first) and each is streamed, as it arrives,
// both into the store as a compressed blob (hashed: the digest in the manifest) and, still
// compressed, to the store's unpacker, which decompresses and unpacks it in a worker thread
// (hashed again: the diff_id in the config; see unpack-worker.ts). unpackLayer needs the parent's
// chain ID, but a chain ID is only a hash of diff_ids — all known from the config before any
// layer arrives — so unpacking is parallel too:
//   chainId(L0) = diffId(L0);  chainId(Ln) = sha256(chainId(Ln-1) + " " + diffId(Ln))
import { crashPoint } from '../sys/crash.js';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, pipeline, type Transform } from 'node:stream';
import { TsrunError } from '../errors.js';
import { blobStream, readBlob } from '../registry-client/blob.js';
import { RegistryClient, type ClientOptions } from '../registry-client/client.js';
import { MAX_CONFIG_BYTES, parseManifest, sha256 } from '../registry-client/manifest.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform, platformMatches, selectManifest } from '../registry-client/platform.js';
import { formatReference, parseReference, repositoryName, type Reference } from '../registry-client/reference.js';
import type { Repository } from '../registry-client/remote.js';
import { addBlobSource } from '../registry-client/sources.js';
import type { Descriptor, Digest, ImageConfig, ImageManifest, ImageRecord, LayerRecord, Platform } from './types.js';

/** The part of ImageStore (store.ts) that pulling uses. */
export interface PullStore {
  readonly root: string;
  hasBlob(d: Digest): Promise<boolean>;
  blobPath(d: Digest): string;
  readBlob(d: Digest): Promise<Buffer>;
  /** Hashes what it stores, and fails (storing nothing) on another digest or size: a layer's
   * download leaves that check to it (fetchLayer). */
  writeBlob(source: AsyncIterable<Uint8Array>, expected: { digest: Digest; size?: number }): Promise<void>;
  writeBlobBytes(bytes: Uint8Array, expected?: { digest: Digest; size?: number }): Promise<Digest>;
  layer(chainId: Digest): Promise<LayerRecord | undefined>;
  /** `before`: the layer goes into place only once it settles, and not at all if it rejects. */
  unpackLayer(diffId: Digest, parentChainId: Digest | null, tar: AsyncIterable<Uint8Array>, before?: Promise<unknown>): Promise<LayerRecord>;
  putImage(p: { manifestDigest: Digest; manifest: ImageManifest; configDigest: Digest; names: string[]; also?: Digest[] }): Promise<ImageRecord>;
  /** With the image's repo digests (name@sha256:...), as ImageStore's StoredImage has them. */
  resolve(nameOrId: string): Promise<(ImageRecord & { repoDigests?: string[] }) | undefined>;
}

export type LayerStatus =
  | 'Waiting'
  | 'Downloading'
  | 'Retrying'
  | 'Verifying Checksum'
  | 'Extracting'
  | 'Pull complete'
  | 'Already exists';

/** One line of docker's progress display: a layer (short digest) and what is happening to it. */
export interface PullEvent {
  id: string;
  status: LayerStatus;
  current?: number;
  total?: number;
  /** For Retrying: why, and how long until the next try. */
  detail?: string;
}

export interface PullOptions extends ClientOptions {
  /** os/arch[/variant] or a Platform; default: this machine's. */
  platform?: string | Platform;
  maxConcurrentDownloads?: number;
  /** Decompression for a layer media type (default: src/image/compression.ts). */
  decompressor?: (mediaType: string) => Transform | null;
  /** Reuse a client (and its connections, tokens) across pulls, e.g. for --all-tags. */
  client?: RegistryClient;
  /** Tells the caller which image is being pulled, before any layer event. */
  onResolved?: (info: { manifestDigest: Digest; layers: number }) => void;
  /** The process unpacks nothing after this pull (`pull` of one image, `run`): the unpack
   * workers end once the layers are in, while the image is recorded (unpack-worker.ts). */
  lastUnpack?: boolean;
}

export interface PullResult {
  /** The full reference pulled (docker.io/library/busybox:latest). */
  name: string;
  manifestDigest: Digest;
  image: ImageRecord;
  /** false when the store already had this exact image under this name. */
  updated: boolean;
}

const DEFAULT_CONCURRENCY = 3;

export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) out.push(out.length === 0 ? d : sha256(Buffer.from(`${out[out.length - 1]} ${d}`)));
  return out;
}

export function shortId(d: Digest): string {
  return d.slice('sha256:'.length, 'sha256:'.length + 12);
}

/** Prefix an error with the command and reference, keeping its code (`pull x: ...`). */
export function inContext(err: unknown, prefix: string): TsrunError {
  if (err instanceof TsrunError) return new TsrunError(err.code, `${prefix}: ${err.message}`, { cause: err.cause ?? err });
  return new TsrunError('EREGISTRY', `${prefix}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/** Pull `input` (busybox, 127.0.0.1:5000/app:v1, x@sha256:...) into `store`. */
export async function pullImage(
  store: PullStore,
  input: string | Reference,
  options: PullOptions = {},
  onProgress: (e: PullEvent) => void = () => {},
): Promise<PullResult> {
  const ref = typeof input === 'string' ? parseReference(input) : input;
  const shown = typeof input === 'string' ? input : formatReference(ref);
  const client = options.client ?? (await RegistryClient.open('pull', options));
  try {
    return await pullWith(client, store, ref, options, onProgress);
  } catch (err) {
    throw inContext(err, `pull ${shown}`);
  } finally {
    if (!options.client) await client.close();
  }
}

/** `pull --all-tags`: every tag of the repository, one after the other. */
export async function pullAllTags(
  store: PullStore,
  input: string,
  options: PullOptions = {},
  onProgress: (e: PullEvent & { tag: string }) => void = () => {},
  onTag: (tag: string) => void = () => {},
): Promise<PullResult[]> {
  const ref = parseReference(input);
  if (typeof input === 'string' && (/:[^/]+$/.test(input.split('@')[0]!) || ref.digest)) {
    throw new TsrunError('EINVAL_FLAG', `pull ${input}: tag can't be used with --all-tags/-a`);
  }
  const client = options.client ?? (await RegistryClient.open('pull', options));
  try {
    let tags: string[];
    try {
      tags = await client.registry(ref.registry).repository(ref.repository).listTags();
    } catch (err) {
      throw inContext(err, `pull ${input}`);
    }
    const results: PullResult[] = [];
    for (const tag of tags.sort()) {
      onTag(tag);
      results.push(await pullImage(store, { ...ref, tag }, { ...options, client }, (e) => onProgress({ ...e, tag })));
    }
    return results;
  } finally {
    if (!options.client) await client.close();
  }
}

async function pullWith(
  client: RegistryClient,
  store: PullStore,
  ref: Reference,
  options: PullOptions,
  onProgress: (e: PullEvent) => void,
): Promise<PullResult> {
  const name = formatReference(ref);
  const repo = client.registry(ref.registry).repository(ref.repository, ['pull']);
  const explicit = options.platform !== undefined;
  const want = options.platform === undefined ? hostPlatform() : typeof options.platform === 'string' ? parsePlatform(options.platform) : normalizePlatform(options.platform);

  // What the store has under this name, read while the registry answers.
  const resolving = store.resolve(name).catch(() => undefined);

  // 1. The manifest: from the store when pinned by a digest we already hold, else the registry.
  const top = await manifestBytes(store, repo, ref.digest ?? ref.tag ?? 'latest');
  let parsed = parseManifest(top.bytes, top.contentType, `${name}`);
  let manifestDigest = top.digest;
  let manifestRaw = top.bytes;
  /** The index the manifest was chosen from: the image holds it too (else it is garbage). */
  let index: Digest | undefined;
  if (parsed.kind === 'index') {
    await saveBlob(store, top.bytes, top.digest);
    index = top.digest;
    const chosen = selectManifest(parsed.index.manifests, want, name);
    const child = await manifestBytes(store, repo, chosen.digest);
    parsed = parseManifest(child.bytes, child.contentType ?? chosen.mediaType, `${name} (${formatPlatform(want)})`);
    if (parsed.kind === 'index') throw new TsrunError('EREGISTRY', `${name}: an index inside an index is not supported`);
    manifestDigest = child.digest;
    manifestRaw = child.bytes;
  }
  const manifest = parsed.manifest;
  options.onResolved?.({ manifestDigest, layers: manifest.layers.length });
  const before = await resolving;
  // Already here under this name, manifest and config blobs included: if no layer is missing
  // either, recording the image again would change nothing (and take the store's lock).
  const recorded =
    before?.manifestDigest === manifestDigest &&
    before.repoDigests?.includes(`${repositoryName(ref)}@${manifestDigest}`) === true &&
    (await store.hasBlob(manifestDigest)) &&
    (await store.hasBlob(manifest.config.digest));

  // 2. The config: diff_ids (what the layers unpack to) and the platform. Its blob is written
  // (and fsynced) while the layers come.
  const { config, saved } = await imageConfig(store, repo, manifest.config);
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
    throw new TsrunError(
      'EDIGEST',
      `${name}: the config lists ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids for ${manifest.layers.length} layers in the manifest`,
    );
  }
  const actual = normalizePlatform({ os: config.os ?? 'unknown', architecture: config.architecture ?? 'unknown', ...(config.variant && { variant: config.variant }) });
  if (!platformMatches(actual, want)) {
    const msg = `the image's platform (${formatPlatform(actual)}) does not match the ${explicit ? 'requested' : 'detected host'} platform (${formatPlatform(want)})`;
    if (explicit) throw new TsrunError('ENOIMAGE', `${name}: image was found but ${msg}`);
    options.onWarning?.(`${name}: ${msg}`);
  }

  // 3. The layers: skip the ones already unpacked, fetch the rest in parallel, largest first —
  // the longest job started last would finish last, alone on a machine with idle cores.
  const chains = chainIds(diffIds);
  const todo: number[] = [];
  const present = await Promise.all(chains.map((c) => store.layer(c)));
  for (let i = 0; i < manifest.layers.length; i++) {
    if (present[i]) onProgress({ id: shortId(manifest.layers[i]!.digest), status: 'Already exists' });
    else todo.push(i);
  }
  for (const i of todo) onProgress({ id: shortId(manifest.layers[i]!.digest), status: 'Waiting' });
  todo.sort((a, b) => manifest.layers[b]!.size - manifest.layers[a]!.size || a - b);
  const [layers, configSaved] = await Promise.allSettled([
    runLimited(todo, options.maxConcurrentDownloads ?? DEFAULT_CONCURRENCY, (i) =>
      fetchLayer(store, repo, manifest.layers[i]!, diffIds[i]!, i === 0 ? null : chains[i - 1]!, options.decompressor, onProgress),
    ),
    saved,
  ]);
  for (const r of [layers, configSaved]) if (r.status === 'rejected') throw r.reason;
  crashPoint('pull:layers-stored');
  if (options.lastUnpack && todo.length > 0) (await import('./unpack-worker.js')).stopIdleUnpackWorkers();

  // 4. Manifest last: an image is recorded only once everything it needs is in the store.
  let image: ImageRecord;
  if (recorded && todo.length === 0 && index === undefined) {
    image = before;
  } else {
    await saveBlob(store, manifestRaw, manifestDigest);
    crashPoint('pull:before-record');
    image = await store.putImage({ manifestDigest, manifest, configDigest: manifest.config.digest, names: [name], ...(index && { also: [index] }) });
  }
  await Promise.all(manifest.layers.map((l) => addBlobSource(sourcesDir(store), l.digest, `${ref.registry}/${ref.repository}`).catch(() => {})));
  return { name, manifestDigest, image, updated: before?.manifestDigest !== manifestDigest };
}

export function sourcesDir(store: { root: string }): string {
  return join(store.root, 'registry-sources');
}

async function saveBlob(store: PullStore, bytes: Buffer, digest: Digest): Promise<void> {
  if (!(await store.hasBlob(digest))) await store.writeBlobBytes(bytes, { digest, size: bytes.length });
}

async function manifestBytes(store: PullStore, repo: Repository, reference: string): Promise<{ bytes: Buffer; digest: Digest; contentType?: string }> {
  // The store's blobs were verified when written: a digest we hold needs no network.
  if (reference.startsWith('sha256:') && (await store.hasBlob(reference as Digest))) {
    return { bytes: await store.readBlob(reference as Digest), digest: reference as Digest };
  }
  const m = await repo.getManifest(reference);
  return { bytes: m.bytes, digest: m.digest, ...(m.contentType && { contentType: m.contentType }) };
}

/** The parsed config, and the write of its blob into the store (when it was not there). */
async function imageConfig(store: PullStore, repo: Repository, desc: Descriptor): Promise<{ config: ImageConfig; saved: Promise<unknown> }> {
  let bytes: Buffer;
  let saved: Promise<unknown> = Promise.resolve();
  if (await store.hasBlob(desc.digest)) {
    bytes = await store.readBlob(desc.digest);
  } else {
    bytes = await readBlob(repo, desc, MAX_CONFIG_BYTES); // verified: size and digest
    saved = store.writeBlobBytes(bytes, { digest: desc.digest, size: desc.size });
    saved.catch(() => {}); // awaited by the caller; meanwhile not an unhandled rejection
  }
  try {
    return { config: JSON.parse(bytes.toString('utf8')) as ImageConfig, saved };
  } catch (err) {
    await saved.catch(() => {});
    throw new TsrunError('EREGISTRY', `image config ${desc.digest} is not valid JSON`, { cause: err });
  }
}

/** Runs `fn` over `items` with at most `limit` at a time; the first failure stops new starts. */
async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

/** One layer: download (or read the blob we have) → [store blob] + [decompress → unpack]. */
async function fetchLayer(
  store: PullStore,
  repo: Repository,
  desc: Descriptor,
  diffId: Digest,
  parent: Digest | null,
  decompressor: ((mediaType: string) => Transform | null) | undefined,
  onProgress: (e: PullEvent) => void,
): Promise<void> {
  const id = shortId(desc.digest);
  // With the default decompression, the unpacker gets the compressed bytes and decompresses
  // them in its worker thread; a caller's own decompressor runs here.
  const compression = decompressor ? undefined : await import('./compression.js');
  const kind = compression?.compressionOf(desc.mediaType); // EBADIMAGE before any download
  const haveBlob = await store.hasBlob(desc.digest);
  let lastShown = 0;
  const source: AsyncIterable<Uint8Array> = haveBlob
    ? createReadStream(store.blobPath(desc.digest))
    : blobStream(repo, desc, {
        verifyDigest: false, // the blob writer does (below)
        onProgress: (current, total) => {
          // Throttle: a progress line per 64 KiB is plenty.
          if (current - lastShown >= 65536 || current === total) {
            lastShown = current;
            onProgress({ id, status: 'Downloading', current, total });
          }
        },
        onRetry: (delayMs, reason) => onProgress({ id, status: 'Retrying', detail: `Retrying in ${Math.ceil(delayMs / 1000)} seconds (${reason})` }),
      });
  onProgress({ id, status: haveBlob ? 'Extracting' : 'Downloading', current: 0, total: desc.size });

  // Some slack per consumer, so the blob file and the unpacker rarely wait for each other.
  // Object mode hands each chunk on as it is; in byte mode each read would concatenate (copy)
  // all that is buffered.
  const toBlob = new PassThrough({ objectMode: true, highWaterMark: PIPE_CHUNKS });
  const toUnpack = new PassThrough({ objectMode: true, highWaterMark: PIPE_CHUNKS });
  const d = decompressor?.(desc.mediaType);
  const decompressed = d ? pipeline(toUnpack, d, () => {}) : undefined;
  const tar: AsyncIterable<Uint8Array> = compression ? new compression.CompressedTar(toUnpack, kind!) : (decompressed ?? toUnpack);
  const outs = haveBlob ? [toUnpack] : [toBlob, toUnpack];

  const abort = (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    toBlob.destroy(e);
    // The unpacker's stream, once it has all its bytes, is left to the unpacker: the layer does
    // not go into place when its blob fails (`before`), and a stream destroyed after its reader
    // is gone throws its error with nobody listening.
    for (const s of [toUnpack, decompressed]) if (s && !s.writableEnded) s.destroy(e);
  };
  // The download checks sizes only: the blob writer hashes what it stores and refuses another
  // digest, and the layer goes into place only once its blob is in (a layer that unpacks to its
  // diff_id from bytes that are not the manifest's blob would otherwise stay, and the next pull
  // would record the image without that blob).
  const blob = haveBlob ? undefined : store.writeBlob(toBlob, { digest: desc.digest, size: desc.size });
  const tasks: Array<Promise<unknown>> = [
    fanOut(source, outs).then(() => {
      if (!haveBlob) onProgress({ id, status: 'Verifying Checksum', current: desc.size, total: desc.size });
      onProgress({ id, status: 'Extracting', current: desc.size, total: desc.size });
    }),
    // The blob before the layer: when both fail, the blob's error is the cause (see below).
    ...(blob ? [blob] : []),
    store.unpackLayer(diffId, parent, tar, blob),
  ];
  const results = await Promise.allSettled(tasks.map((t) => t.catch((err) => (abort(err), Promise.reject(err)))));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  // One failure stops the other tasks, which then fail too: report the one that was the cause
  // (a full disk, a refused layer, a digest), not the streams it cut short.
  if (failures.length > 0) throw failures.find((e) => !cutShort(e)) ?? failures[0];
  onProgress({ id, status: 'Pull complete' });
}

/** Chunks (of up to 64 KiB from the network) buffered for each consumer of a layer. */
const PIPE_CHUNKS = 16;
const CONSUMER_STOPPED = new TsrunError('EINTERNAL', 'layer consumer stopped');

/** An error that only says a stream was stopped: a consumer that quits early destroys its
 * stream with an AbortError, and the copy to it then fails (CONSUMER_STOPPED or that error). */
function cutShort(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e === CONSUMER_STOPPED || e.name === 'AbortError') return true;
  }
  return false;
}

/** Copies one stream to several, at the pace of the slowest (backpressure on each). */
async function fanOut(source: AsyncIterable<Uint8Array>, outs: PassThrough[]): Promise<void> {
  try {
    for await (const chunk of source) {
      for (const out of outs) {
        if (out.destroyed) throw CONSUMER_STOPPED;
        if (!out.write(chunk)) await once(out, 'drain');
      }
    }
    for (const out of outs) out.end();
  } catch (err) {
    for (const out of outs) out.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}
