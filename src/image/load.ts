// `tsrun load`: images from an OCI image layout (directory), an oci-archive (a tar of one),
// or a docker-archive (`docker save`), into the store. Everything is verified on the way in:
// each blob against its descriptor (before anything is unpacked), each unpacked layer against the config's diff_ids. If an
// image fails, what was added for it is removed again: no image record, no layer, no blob.
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { pipeline, type Readable } from 'node:stream';
import { TsrunError } from '../errors.js';
import { MediaType, parseManifest, type ImageIndex } from '../registry-client/manifest.js';
import { formatPlatform, hostPlatform, platformMatches, selectManifest } from '../registry-client/platform.js';
import { normalizeName } from '../registry-client/reference.js';
import { decompressSniffed, decompressor } from './compression.js';
import { Hasher, chainIds, checkDigest, hexOf, mismatch, sha256, type Expected } from './digest.js';
import { ArchiveSource, DirSource, type ImageSource } from './load-source.js';
import type { ImageStore } from './store.js';
import type { Descriptor, Digest, ImageConfig, ImageManifest } from './types.js';
import { crashPoint } from '../sys/crash.js';

export interface LoadedImage {
  /** Image ID (config digest). */
  id: Digest;
  manifestDigest: Digest;
  /** Full names (docker.io/library/busybox:latest); empty when loaded untagged. */
  names: string[];
  /** Things worth telling the user that did not stop the load. */
  warnings: string[];
}

const MAX_JSON = 4 * 1024 * 1024;
const MAX_CONFIG = 8 * 1024 * 1024;
const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

/** Loads every image in `input`: a directory (OCI layout) or a tarball. */
export async function loadImages(store: ImageStore, input: string): Promise<LoadedImage[]> {
  const st = await fs.stat(input).catch((err: unknown) => {
    throw new TsrunError('EBADIMAGE', `open ${input}: ${(err as Error).message}`, { cause: err });
  });
  if (st.isDirectory()) return loadFrom(store, new DirSource(input));
  return loadImagesFromStream(store, createReadStream(input), input);
}

/** Loads from a tar stream (`tsrun load < busybox.tar`). */
export async function loadImagesFromStream(store: ImageStore, input: Readable, what = 'stdin'): Promise<LoadedImage[]> {
  const tmp = await store.makeTempDir('load');
  const source = await ArchiveSource.fromStream(input, what, tmp);
  return loadFrom(store, source);
}

async function loadFrom(store: ImageStore, source: ImageSource): Promise<LoadedImage[]> {
  try {
    if (await source.has('manifest.json')) return await loadDockerArchive(store, source);
    if (await source.has('index.json')) return await loadOciLayout(store, source);
    throw new TsrunError(
      'EBADIMAGE',
      `${source.what} is not an image: it has neither manifest.json (docker save) nor index.json (OCI image layout)`,
    );
  } finally {
    await source.close();
  }
}

// ---- OCI image layout ------------------------------------------------------------------

interface Target {
  desc: Descriptor;
  names: string[];
  warnings: string[];
}

async function loadOciLayout(store: ImageStore, source: ImageSource): Promise<LoadedImage[]> {
  const warnings: string[] = [];
  if (!(await source.has('oci-layout'))) warnings.push(`${source.what} has no oci-layout file; reading index.json anyway`);
  const index = parseJson<ImageIndex>(await source.read('index.json', MAX_JSON), `${source.what}: index.json`);
  if (!Array.isArray(index?.manifests)) throw new TsrunError('EBADIMAGE', `${source.what}: index.json has no "manifests" list`);

  const host = hostPlatform();
  const targets: Target[] = [];
  const skipped: string[] = [];
  for (const [i, d] of index.manifests.entries()) {
    const desc = checkDescriptor(d, `${source.what}: index.json manifests[${i}]`);
    const { names, warnings: w } = namesFromAnnotations(desc.annotations);
    if (desc.mediaType === MediaType.ociIndex || desc.mediaType === MediaType.dockerList) {
      const nested = await readJsonBlob<ImageIndex>(source, desc);
      const chosen = selectManifest(nested.manifests ?? [], host, `${source.what}: index ${desc.digest}`);
      targets.push({ desc: checkDescriptor(chosen, `${source.what}: index ${desc.digest}`), names, warnings: w });
    } else if (desc.platform && !platformMatches(desc.platform, host)) {
      skipped.push(formatPlatform(desc.platform));
    } else {
      targets.push({ desc, names, warnings: w });
    }
  }
  if (targets.length === 0) {
    const has = skipped.length ? ` (it has ${skipped.join(', ')})` : '';
    throw new TsrunError('ENOIMAGE', `${source.what}: no image for ${formatPlatform(host)}${has}`);
  }

  const loaded: LoadedImage[] = [];
  for (const t of targets) {
    const manifestBytes = await readBlob(source, t.desc, MAX_JSON);
    const manifest = asManifest(manifestBytes, t.desc, source.what);
    const configBytes = await readBlob(source, manifest.config, MAX_CONFIG);
    const layers = manifest.layers.map((l) => ({ desc: l, path: blobPath(l.digest) }));
    const image = await ingest(store, source, {
      configBytes,
      layers,
      names: t.names,
      manifest: { bytes: manifestBytes, value: manifest },
    });
    loaded.push({ ...image, warnings: [...warnings, ...t.warnings] });
  }
  return loaded;
}

/**
 * An OCI ref.name is often just a tag (`latest`): it names no repository, so the image is
 * loaded untagged, as podman does, unless containerd's annotation gives a full name.
 */
function namesFromAnnotations(annotations: Record<string, string> | undefined): { names: string[]; warnings: string[] } {
  const candidates = [annotations?.[CONTAINERD_NAME], annotations?.[REF_NAME]];
  for (const c of candidates) {
    if (!c || !(c.includes('/') || c.includes(':'))) continue;
    try {
      return { names: [normalizeName(c)], warnings: [] };
    } catch (err) {
      return { names: [], warnings: [`ignoring the image name "${c}": ${(err as Error).message}`] };
    }
  }
  return { names: [], warnings: [] };
}

function asManifest(bytes: Buffer, desc: Descriptor, what: string): ImageManifest {
  const parsed = recode(() => parseManifest(bytes, desc.mediaType, `${what}: manifest ${desc.digest}`));
  if (parsed.kind !== 'manifest') throw new TsrunError('EBADIMAGE', `${what}: ${desc.digest} is an index nested too deep`);
  return parsed.manifest;
}

// ---- docker-archive (docker save) ------------------------------------------------------

interface DockerManifestItem {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function loadDockerArchive(store: ImageStore, source: ImageSource): Promise<LoadedImage[]> {
  const items = parseJson<DockerManifestItem[]>(await source.read('manifest.json', MAX_JSON), `${source.what}: manifest.json`);
  if (!Array.isArray(items) || items.length === 0) throw new TsrunError('EBADIMAGE', `${source.what}: manifest.json lists no images`);
  const loaded: LoadedImage[] = [];
  for (const [i, item] of items.entries()) {
    const what = `${source.what}: manifest.json[${i}]`;
    if (typeof item?.Config !== 'string' || !Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) {
      throw new TsrunError('EBADIMAGE', `${what}: needs "Config" and "Layers"`);
    }
    const configBytes = await source.read(item.Config, MAX_CONFIG);
    // The file name is the digest in both docker save formats (<hex>.json, blobs/sha256/<hex>).
    const named = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(item.Config);
    if (named && sha256(configBytes) !== `sha256:${named[1]}`) {
      throw new TsrunError('EDIGEST', `${what}: config ${item.Config} hashes to ${sha256(configBytes)}`);
    }
    const names: string[] = [];
    for (const tag of item.RepoTags ?? []) {
      try {
        names.push(normalizeName(tag));
      } catch (err) {
        throw new TsrunError('EBADIMAGE', `${what}: RepoTags: ${(err as Error).message}`, { cause: err });
      }
    }
    const layers = item.Layers.map((p) => {
      const blob = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(p);
      return { path: p, desc: blob ? ({ digest: `sha256:${blob[1]}` } as Pick<Descriptor, 'digest'>) : undefined };
    });
    loaded.push({ ...(await ingest(store, source, { configBytes, layers, names })), warnings: [] });
  }
  return loaded;
}

// ---- both: verify, unpack, record ----------------------------------------------------------

interface IngestPlan {
  configBytes: Buffer;
  /** In order; `desc` (when known) is verified against the blob's bytes. */
  layers: Array<{ path: string; desc?: Pick<Descriptor, 'digest'> & Partial<Descriptor> }>;
  names: string[];
  /** OCI: the manifest as found. docker-archive: none; one is made (uncompressed layers). */
  manifest?: { bytes: Buffer; value: ImageManifest };
}

async function ingest(store: ImageStore, source: ImageSource, plan: IngestPlan): Promise<Omit<LoadedImage, 'warnings'>> {
  const configDigest = sha256(plan.configBytes);
  const config = parseConfig(plan.configBytes, configDigest, source.what);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== plan.layers.length) {
    throw new TsrunError('EBADIMAGE', `${source.what}: image ${configDigest} has ${plan.layers.length} layers but ${diffIds.length} diff_ids`);
  }
  if (plan.manifest && plan.manifest.value.config.digest !== configDigest) {
    throw new TsrunError('EDIGEST', `${source.what}: config hashes to ${configDigest}, the manifest says ${plan.manifest.value.config.digest}`);
  }
  for (const l of plan.layers) {
    if ((await source.size(l.path)) === undefined) throw new TsrunError('EBADIMAGE', `${source.what}: layer ${l.path} is missing`);
  }

  const created = { layers: [] as Digest[], blobs: [] as Digest[] };
  try {
    const putBlob = async (bytes: Buffer): Promise<Digest> => {
      const d = sha256(bytes);
      if (!(await store.hasBlob(d))) created.blobs.push(d);
      return store.writeBlobBytes(bytes);
    };
    await putBlob(plan.configBytes);
    // Verify every layer blob before unpacking any, so a broken archive fails fast and says
    // which blob is wrong (gunzip alone may not notice garbage after a gzip stream). With the
    // image's own manifest, the blobs are kept (as a pull keeps them: `push` needs them) and
    // unpacked from the verified copy in the store; without, see below.
    const keep = plan.manifest !== undefined;
    for (const l of plan.layers) {
      if (!l.desc) continue;
      const expected = { digest: l.desc.digest, size: l.desc.size };
      if (!keep) await verifyFile(source, l.path, expected);
      else if (!(await store.hasBlob(expected.digest))) {
        await store.writeBlob(source.open(l.path), expected);
        created.blobs.push(expected.digest);
      }
    }
    const chains = chainIds(diffIds);
    const sizes: number[] = [];
    for (const [i, l] of plan.layers.entries()) {
      const diffId = diffIds[i]!;
      // Without the image's own manifest, the one recorded lists the layers as docker does,
      // uncompressed, by their diff_ids (dockerManifest): each layer's tar is kept as that blob,
      // which `push` and `save` send, and unpacked from the verified copy in the store.
      if (!keep && !(await store.hasBlob(diffId))) {
        await store.writeBlob(await layerTar(source.open(l.path), l, source.what), { digest: diffId }).catch((err: unknown) => {
          throw err instanceof TsrunError ? new TsrunError(err.code, `${source.what}: layer ${l.path}: ${err.message}`, { cause: err }) : err;
        });
        created.blobs.push(diffId);
      }
      const have = await store.layer(chains[i]!);
      if (have) {
        sizes.push(have.size);
        continue;
      }
      const tar = keep ? await layerTar(l.desc ? store.blobStream(l.desc.digest) : source.open(l.path), l, source.what) : store.blobStream(diffId);
      const record = await store.unpackLayer(diffId, i === 0 ? null : chains[i - 1]!, tar);
      created.layers.push(chains[i]!);
      sizes.push(record.size);
    }
    const manifestBytes = plan.manifest?.bytes ?? Buffer.from(JSON.stringify(dockerManifest(plan.configBytes, configDigest, diffIds, sizes)));
    const manifestDigest = await putBlob(manifestBytes);
    const manifest = plan.manifest?.value ?? (JSON.parse(manifestBytes.toString('utf8')) as ImageManifest);
    crashPoint('load:before-record');
    await store.putImage({ manifestDigest, manifest, configDigest, names: plan.names });
    return { id: configDigest, manifestDigest, names: plan.names };
  } catch (err) {
    await store.discard(created).catch(() => {});
    throw err;
  }
}

/** The layer's tar, decompressed per media type, or sniffed. */
async function layerTar(raw: Readable, l: IngestPlan['layers'][number], what: string): Promise<Readable> {
  if (l.desc?.mediaType !== undefined) {
    const d = decompressor(l.desc.mediaType);
    return d ? pipeline(raw, d, () => {}) : raw;
  }
  return (await decompressSniffed(raw, `${what}: layer ${l.path}`)).stream;
}

async function verifyFile(source: ImageSource, name: string, expected: Expected): Promise<void> {
  const h = new Hasher();
  for await (const chunk of source.open(name)) h.update(chunk as Buffer);
  const bad = mismatch(`${source.what}: blob ${name}`, expected, { digest: h.digest(), size: h.size });
  if (bad) throw bad;
}

/** What docker itself records for a loaded image: uncompressed layers, digest = diff_id. */
function dockerManifest(configBytes: Buffer, configDigest: Digest, diffIds: Digest[], sizes: number[]): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: MediaType.dockerManifest,
    config: { mediaType: MediaType.dockerConfig, digest: configDigest, size: configBytes.length },
    layers: diffIds.map((d, i) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: d, size: sizes[i]! })),
  };
}

// ---- helpers -----------------------------------------------------------------------------

function blobPath(digest: Digest): string {
  return `blobs/sha256/${hexOf(digest)}`;
}

async function readBlob(source: ImageSource, desc: Descriptor, limit: number): Promise<Buffer> {
  const bytes = await source.read(blobPath(checkDigest(desc.digest, `${source.what}: descriptor`)), limit).catch((err: unknown) => {
    if (err instanceof TsrunError && err.code === 'EBADIMAGE' && /is missing$/.test(err.message)) {
      throw new TsrunError('EBADIMAGE', `${source.what}: blob ${desc.digest} (${desc.mediaType}) is missing`);
    }
    throw err;
  });
  const bad = mismatch(`${source.what}: blob ${desc.digest}`, desc, { digest: sha256(bytes), size: bytes.length });
  if (bad) throw bad;
  return bytes;
}

async function readJsonBlob<T>(source: ImageSource, desc: Descriptor): Promise<T> {
  return parseJson<T>(await readBlob(source, desc, MAX_JSON), `${source.what}: ${desc.digest}`);
}

function checkDescriptor(d: unknown, what: string): Descriptor {
  const x = d as Partial<Descriptor> | null;
  if (!x || typeof x !== 'object' || typeof x.mediaType !== 'string' || typeof x.size !== 'number') {
    throw new TsrunError('EBADIMAGE', `${what}: not a valid descriptor`);
  }
  checkDigest(x.digest, what);
  return x as Descriptor;
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new TsrunError('EBADIMAGE', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function parseConfig(bytes: Buffer, digest: Digest, what: string): ImageConfig {
  const config = parseJson<ImageConfig>(bytes, `${what}: config ${digest}`);
  const diffIds = config?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds)) throw new TsrunError('EBADIMAGE', `${what}: config ${digest} has no rootfs.diff_ids`);
  diffIds.forEach((d, i) => checkDigest(d, `${what}: config ${digest} diff_ids[${i}]`));
  return config;
}

/** The registry client's parsers say EREGISTRY; here the same problems are a bad image. */
function recode<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof TsrunError && err.code === 'EREGISTRY') throw new TsrunError('EBADIMAGE', err.message, { cause: err });
    throw err;
  }
}
