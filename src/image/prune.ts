// What images and containers share: rmi's "in use" check, `image prune` (dangling images, then
// garbage collection of layers and blobs nothing reaches), and `system df`.
//
// The image store knows nothing about containers; the caller passes what it needs to know
// (ContainerRef, from src/container/diff.ts containerRefs) so the dependency points from
// containers to images, as everywhere else.
//
// Reachability: a layer or blob stays while images.json references it or a container's
// lowerDirs mount it. A pull, load, commit or build writes its layers and blobs before it
// records its image: it holds a lease meanwhile, and garbage collection waits for no lease to
// be alive (leases.ts), so what is unreferenced then is garbage, whatever its age.
import { TsrunError } from '../errors.js';
import { normalizeName } from '../registry-client/reference.js';
import { hexOf } from './digest.js';
import { humanSize as humanSizeWithPrecision } from './listing.js';
import type { RemoveOptions, RemoveResult, StoredImage, ImageStore } from './store.js';
import type { Digest } from './types.js';

export interface ContainerRef {
  id: string;
  name: string;
  /** Config digest of the image it was created from. */
  imageId: string;
  /** Relative to the store root (`l/<26 chars>`), as in container.json. */
  lowerDirs: string[];
  /** Running, paused or restarting. */
  active: boolean;
  /** Bytes in its upper dir (for `system df`), when measured. */
  sizeRw?: number;
  /** With a user namespace: the key of the layer copies its map would use (userns-files.ts). */
  usernsKey?: string;
}

const short = (id: string): string => id.replace(/^sha256:/, '').slice(0, 12);

/**
 * rmi with docker's protection: removing the last reference to an image that containers were
 * created from is refused without `force`. With `force`, the names go but the image stays
 * (untagged, `<none>`) while a container uses it: its layers are that container's root.
 */
export async function removeImageChecked(store: ImageStore, containers: ContainerRef[], input: string, opts: RemoveOptions = {}): Promise<RemoveResult> {
  const image = await store.resolve(input);
  const users = image ? containers.filter((c) => c.imageId === image.id) : [];
  // `containers` was read before the lock: opts.userOf asks again once the image is unrecorded.
  if (!image || users.length === 0) return store.removeImage(input, opts);
  const byId = isIdInput(input, image.id);
  // A name among several only untags: the image stays, so nothing is in the way. (One image
  // ID may be recorded under several manifests, a pulled and a loaded copy: count them all.)
  const names = (await store.list()).filter((i) => i.id === image.id).flatMap((i) => i.names);
  if (!byId && new Set(names).size > 1) return store.removeImage(input, opts);
  const user = users.find((c) => c.active) ?? users[0]!;
  if (!opts.force) {
    if (!byId) {
      throw new TsrunError(
        'ESTATE',
        `conflict: unable to remove repository reference "${input}" (must force) - container ${short(user.id)} is using its referenced image ${short(image.id)}`,
      );
    }
    const how = user.active ? 'running' : 'stopped';
    throw new TsrunError('ESTATE', `conflict: unable to delete ${short(image.id)} (must be forced) - image is being used by ${how} container ${short(user.id)}`);
  }
  const untagged: string[] = [];
  if (byId) {
    for (const n of new Set(names)) {
      await store.untag(n);
      untagged.push(n);
    }
  } else {
    await store.untag(input);
    untagged.push(normalizeName(input));
  }
  return { untagged, deleted: [] };
}

function isIdInput(input: string, id: string): boolean {
  const m = /^(?:sha256:)?([a-f0-9]{3,64})$/.exec(input);
  return m !== null && hexOf(id as Digest).startsWith(m[1]!);
}

export interface PruneResult {
  untagged: string[];
  /** Image IDs, then chain IDs of layers, as docker lists them. */
  deleted: Digest[];
  reclaimed: number;
  /** Processes writing into the store (leases.ts): unreferenced content was kept for them. */
  writers: string[];
}

/** docker image prune [-a]: images no container uses (only untagged ones without `all`), then GC. */
export async function pruneImages(store: ImageStore, containers: ContainerRef[], opts: { all?: boolean; userOf?: RemoveOptions['userOf'] } = {}): Promise<PruneResult> {
  const before = await store.usage();
  const used = new Set(containers.map((c) => c.imageId));
  const result: PruneResult = { untagged: [], deleted: [], reclaimed: 0, writers: [] };
  const ids = new Set<Digest>();
  for (const img of await store.list()) {
    if (!used.has(img.id) && (opts.all || img.names.length === 0)) ids.add(img.id);
  }
  for (const id of ids) {
    const r = await store.removeImage(id, { force: true, ...(opts.userOf && { userOf: opts.userOf }) }).catch(() => undefined);
    if (!r) continue;
    result.untagged.push(...r.untagged);
    result.deleted.push(...r.deleted);
  }
  const collected = await store.collect(mountedLinks(containers));
  result.deleted.push(...collected.layers);
  result.writers = collected.writers;
  const after = await store.usage();
  result.reclaimed = Math.max(0, before.layers.size + before.blobs.size - after.layers.size - after.blobs.size);
  return result;
}

/** The layer links (`l/<26 chars>`) containers mount. */
export function mountedLinks(containers: ContainerRef[]): Set<string> {
  return new Set(containers.flatMap((c) => c.lowerDirs));
}

// ---- system df ----------------------------------------------------------------------------------

export interface DfRow {
  type: 'Images' | 'Containers' | 'Local Volumes' | 'Build Cache';
  total: number;
  active: number;
  size: number;
  reclaimable: number;
}

/**
 * docker system df. Images: layers shared between images count once; reclaimable is what
 * would go if every image no container uses were removed. Containers: their upper dirs;
 * reclaimable is that of the ones not running. Local Volumes: a volume is active while a
 * container names it, reclaimable when none does (what `volume prune -a` frees).
 */
export function diskUsage(
  images: StoredImage[],
  containers: ContainerRef[],
  volumes: Array<{ size: number; used: boolean }> = [],
  cache: { entries: number; size: number } = { entries: 0, size: 0 },
): DfRow[] {
  const used = new Set(containers.map((c) => c.imageId));
  const sizes = new Map<string, number>();
  const usedLayers = new Set<string>();
  const ids = new Set<string>();
  for (const img of images) {
    ids.add(img.id);
    for (const l of img.layers) {
      sizes.set(l.chainId, l.size);
      if (used.has(img.id)) usedLayers.add(l.chainId);
    }
  }
  let size = 0;
  let inUse = 0;
  for (const [chain, s] of sizes) {
    size += s;
    if (usedLayers.has(chain)) inUse += s;
  }
  const rw = (c: ContainerRef) => c.sizeRw ?? 0;
  return [
    { type: 'Images', total: ids.size, active: [...ids].filter((i) => used.has(i)).length, size, reclaimable: size - inUse },
    {
      type: 'Containers',
      total: containers.length,
      active: containers.filter((c) => c.active).length,
      size: containers.reduce((s, c) => s + rw(c), 0),
      reclaimable: containers.filter((c) => !c.active).reduce((s, c) => s + rw(c), 0),
    },
    {
      type: 'Local Volumes',
      total: volumes.length,
      active: volumes.filter((v) => v.used).length,
      size: volumes.reduce((s, v) => s + v.size, 0),
      reclaimable: volumes.filter((v) => !v.used).reduce((s, v) => s + v.size, 0),
    },
    // The cache's own layers (those no image holds): all of it goes with `builder prune`.
    { type: 'Build Cache', total: cache.entries, active: 0, size: cache.size, reclaimable: cache.size },
  ];
}

/** docker's RECLAIMABLE cell: "1.2MB (40%)", or just the size when there is nothing at all. */
export function reclaimableCell(row: DfRow): string {
  if (row.size <= 0) return humanSize(row.reclaimable);
  return `${humanSize(row.reclaimable)} (${Math.floor((row.reclaimable * 100) / row.size)}%)`;
}

/** go-units HumanSize (4 significant digits, decimal units), as docker df and cp print sizes. */
export function humanSize(bytes: number): string {
  return humanSizeWithPrecision(bytes, 4);
}
