// `tsrun save` (docker save): images as a docker-archive tar that `tsrun load`, `docker load`,
// `podman load` and `skopeo ... docker-archive:` read. The layout is the one docker ≥ 25
// writes, which is a docker-archive and an OCI image layout at once:
//
//   blobs/sha256/<diff_id>      each layer as an uncompressed tar (its digest is its diff_id)
//   blobs/sha256/<config>       the image config, byte for byte (its digest is the image ID)
//   blobs/sha256/<manifest>     an OCI manifest over those blobs
//   index.json  oci-layout      the OCI side (names in the containerd/OCI annotations)
//   manifest.json               the docker side: [{Config, RepoTags, Layers}]
//
// A layer's tar comes from its blob in the store (decompressed), and is checked against the
// diff_id as it is written: an archive never holds a layer that is not what the config says.
import { Readable, pipeline, type Writable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import { TsrunError } from '../errors.js';
import { MediaType } from '../registry-client/manifest.js';
import { normalizeName, parseReference } from '../registry-client/reference.js';
import { decompressor } from './compression.js';
import { Hasher, hexOf, sha256 } from './digest.js';
import { familiarName } from './listing.js';
import type { StoredImage, ImageStore } from './store.js';
import { pack as tarPack, type Pack, type PackHeader } from './tar.js';
import type { Descriptor, Digest, ImageManifest } from './types.js';

const MTIME = new Date(0);

interface SaveItem {
  image: StoredImage;
  /** Full names (docker.io/library/busybox:latest) the user asked for. */
  names: string[];
}

/** Resolves the images named (by name or ID); one item per image, with every name asked for. */
export async function resolveForSave(store: ImageStore, inputs: string[]): Promise<SaveItem[]> {
  const items = new Map<string, SaveItem>();
  for (const input of inputs) {
    const image = await store.resolve(input);
    if (!image) throw new TsrunError('ENOIMAGE', `No such image: ${input}`);
    const item = items.get(image.manifestDigest) ?? { image, names: [] };
    items.set(image.manifestDigest, item);
    const byId = /^(?:sha256:)?[a-f0-9]{3,64}$/.test(input) && hexOf(image.id).startsWith(input.replace(/^sha256:/, ''));
    if (!byId && !input.includes('@')) {
      const name = normalizeName(input);
      if (!item.names.includes(name)) item.names.push(name);
    }
  }
  return [...items.values()];
}

/** Writes the archive of `items` to `out`. */
export async function saveImages(store: ImageStore, items: SaveItem[], out: Writable): Promise<void> {
  const pack = tarPack();
  const written = pipelineAsync(Readable.from(pack), out);
  try {
    await writeArchive(store, items, pack);
    pack.finalize();
  } catch (err) {
    (pack as unknown as { destroy(e: Error): void }).destroy(err as Error);
    await written.catch(() => {});
    throw err;
  }
  await written;
}

async function writeArchive(store: ImageStore, items: SaveItem[], pack: Pack): Promise<void> {
  await entry(pack, { name: 'blobs/', type: 'directory', mode: 0o755 });
  await entry(pack, { name: 'blobs/sha256/', type: 'directory', mode: 0o755 });
  const done = new Set<string>();
  const blob = async (bytes: Buffer): Promise<Digest> => {
    const d = sha256(bytes);
    if (!done.has(d)) await entry(pack, { name: blobName(d), type: 'file', mode: 0o644 }, bytes);
    done.add(d);
    return d;
  };
  const dockerManifest: Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> = [];
  const index: Descriptor[] = [];
  for (const { image, names } of items) {
    const stored = JSON.parse((await store.readBlob(image.manifestDigest)).toString('utf8')) as ImageManifest;
    const diffIds = image.config.rootfs.diff_ids;
    for (const [i, diffId] of diffIds.entries()) {
      if (done.has(diffId)) continue;
      const desc = await layerBlob(store, stored.layers[i], diffId);
      await layerEntry(store, pack, desc, diffId, image.layers[i]?.size, image.id);
      done.add(diffId);
    }
    const configBytes = await store.readBlob(image.id);
    await blob(configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: image.id, size: configBytes.length },
      layers: diffIds.map((d, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d, size: image.layers[i]!.size })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = await blob(manifestBytes);
    const desc: Descriptor = { mediaType: MediaType.ociManifest, digest: manifestDigest, size: manifestBytes.length };
    if (names.length === 0) index.push(desc);
    for (const n of names) {
      const tag = parseReference(n).tag ?? 'latest';
      index.push({ ...desc, annotations: { 'io.containerd.image.name': n, 'org.opencontainers.image.ref.name': tag } });
    }
    dockerManifest.push({ Config: blobName(image.id), RepoTags: names.length ? names.map(familiarName) : null, Layers: diffIds.map(blobName) });
  }
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  await entry(pack, { name: 'index.json', type: 'file', mode: 0o644 }, json({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: index }));
  await entry(pack, { name: 'manifest.json', type: 'file', mode: 0o644 }, json(dockerManifest));
  await entry(pack, { name: 'oci-layout', type: 'file', mode: 0o644 }, json({ imageLayoutVersion: '1.0.0' }));
}

function blobName(d: Digest): string {
  return `blobs/sha256/${hexOf(d)}`;
}

/**
 * The blob a layer can be read from: its own manifest's, or (an image loaded from a
 * docker-archive by an older tsrun kept no blobs) another image's with the same diff_id.
 */
export async function layerBlob(store: ImageStore, desc: Descriptor | undefined, diffId: Digest): Promise<Descriptor | undefined> {
  if (desc && (await store.hasBlob(desc.digest))) return desc;
  for (const other of await store.list()) {
    const i = other.config.rootfs.diff_ids.indexOf(diffId);
    if (i < 0) continue;
    const m = JSON.parse((await store.readBlob(other.manifestDigest).catch(() => Buffer.from('{}'))).toString('utf8')) as Partial<ImageManifest>;
    const d = m.layers?.[i];
    if (d && (await store.hasBlob(d.digest))) return d;
  }
  return undefined;
}

/** One layer's tar, from its blob in the store, verified against its diff_id on the way. */
async function layerEntry(store: ImageStore, pack: Pack, desc: Descriptor | undefined, diffId: Digest, size: number | undefined, imageId: Digest): Promise<void> {
  if (!desc || size === undefined || !(await store.hasBlob(desc.digest))) {
    throw new TsrunError(
      'EBADIMAGE',
      `image ${hexOf(imageId).slice(0, 12)}: layer ${diffId} has only its unpacked copy in the store (a docker-archive loaded by an older tsrun kept no tars), and its exact tar cannot be rebuilt; pull or load the image again to save it`,
    );
  }
  const d = desc.digest === diffId ? null : decompressor(desc.mediaType);
  const tar: Readable = d ? pipeline(store.blobStream(desc.digest), d, () => {}) : store.blobStream(desc.digest);
  const hasher = new Hasher();
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry({ name: blobName(diffId), type: 'file', mode: 0o644, size, mtime: MTIME }, undefined, (err) => (err ? reject(err) : resolve()));
    (async () => {
      for await (const chunk of tar) {
        hasher.update(chunk as Buffer);
        if (hasher.size > size) throw new TsrunError('EDIGEST', `layer ${diffId}: more than the ${size} bytes recorded`);
        if (!sink.write(chunk as Buffer)) await new Promise((r) => sink.once('drain', r));
      }
      const bad = hasher.size !== size ? `${hasher.size} bytes, not ${size}` : hasher.digest() !== diffId ? `it hashes to ${hasher.digest()}` : '';
      if (bad) throw new TsrunError('EDIGEST', `layer ${diffId} in the store does not match its diff_id: ${bad}`);
      sink.end();
    })().catch(reject);
  });
}

async function entry(pack: Pack, header: PackHeader, body?: Buffer): Promise<void> {
  const h = { mtime: MTIME, uid: 0, gid: 0, uname: '', gname: '', ...header };
  await new Promise<void>((resolve, reject) => pack.entry(h, body ?? (h.type === 'file' ? Buffer.alloc(0) : undefined), (err) => (err ? reject(err) : resolve())));
}

/** docker image inspect's shape for an image in the store. */
export function inspectImage(image: StoredImage): Record<string, unknown> {
  const c = image.config;
  const history = c.history ?? [];
  const comment = history.length ? (history[history.length - 1]!.comment as string | undefined) : undefined;
  return {
    Id: image.id,
    RepoTags: image.names.map(familiarName),
    RepoDigests: image.repoDigests.map(familiarName),
    Parent: '',
    Comment: comment ?? '',
    Created: c.created ?? image.added,
    DockerVersion: '',
    Author: c.author ?? '',
    Config: c.config ?? {},
    Architecture: c.architecture,
    ...(c.variant && { Variant: c.variant }),
    Os: c.os,
    Size: image.size,
    GraphDriver: { Name: 'overlay', Data: { LowerDir: [...image.layers].reverse().map((l) => l.dir).join(':') } },
    RootFS: { Type: 'layers', Layers: c.rootfs.diff_ids },
    Metadata: { LastTagTime: image.added },
  };
}
