// The image store (DESIGN.md, "Images and storage"):
//
//   <root>/blobs/sha256/<hex>   verified blobs: manifests, configs, compressed layers
//   <root>/layers/<hex>/        unpacked layer by chain ID: diff/ (overlay lower) + layer.json
//   <root>/l/<26 chars>         short link → ../layers/<hex>/diff (for overlay mount options)
//   <root>/tmp/                 downloads in progress: <pid>-<random>
//   <root>/images.json          names → manifest digest, and what each image holds
//   <root>/leases/<PID@START>    a process writing content it has not recorded yet (leases.ts)
//
// Anything is trusted only after it was verified and renamed into place; a process killed
// half-way leaves temp files that the next open removes, and content that the next garbage
// collection removes (its lease is dead).
// fs.promises rather than node:fs/promises: loaded on first use, not by every `run` (~2 ms).
import { existsSync, mkdirSync, readFileSync, statSync, promises as fs } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TsrunError, errnoOf, wrap } from '../errors.js';
import { normalizeName, parseReference, repositoryName } from '../registry-client/reference.js';
import { Blobs } from './blobs.js';
import { chainIds, checkDigest, hexOf, isDigest, type Expected } from './digest.js';
import { ownerPid, removeTree, tempName, withLock, writeFileAtomic } from './fsutil.js';
import { emptyDb, lookup, nameKey, namesOf, parseDb, referenced, unique, type CacheEntry, type ImageEntry, type ImagesDb } from './images-db.js';
import { Layers, isAbandoned } from './layers.js';
import { othersWriting, readLeases, releaseLease, sweepLeases, takeLease } from './leases.js';
import { crashPoint } from '../sys/crash.js';
import type { Digest, ImageConfig, ImageManifest, ImageRecord, LayerRecord } from './types.js';
import { compareStrings } from '../sys/order.js';

/** An image as the store knows it: ImageRecord plus what `images` and `inspect` show. */
export interface StoredImage extends ImageRecord {
  /** repository@sha256:<manifest digest>. */
  repoDigests: string[];
  /** When it was pulled or loaded into this store. */
  added: string;
}

export interface RemoveResult {
  untagged: string[];
  /** The image ID, then the chain IDs of the layers deleted with it. */
  deleted: Digest[];
}

export interface RemoveOptions {
  force?: boolean;
  /**
   * Asked under the store's lock once the image is no longer recorded, before its layers go:
   * a container that uses the image (described for the error), or undefined. With a user,
   * the removal is undone and refused. The store knows nothing of containers; the caller does.
   */
  userOf?: (imageId: Digest) => Promise<string | undefined>;
  /**
   * The layer links (`l/<26 chars>`) containers mount now: asked under the lock, and those
   * layers stay even when no image records them (a build's step container mounts its FROM
   * image's layers without being that image's user).
   */
  mountedLayers?: () => Promise<Set<string>>;
}

/** What garbage collection did, or why it waited (collect). */
export interface Collected {
  /** Chain IDs of the layers deleted. */
  layers: Digest[];
  blobs: Digest[];
  /** Content was left alone: these processes are writing into the store. */
  writers: string[];
}

export interface StoreUsage {
  images: number;
  layers: { count: number; size: number };
  blobs: { count: number; size: number };
}

/** An image config is small; this bounds what a corrupt store makes us parse. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export class ImageStore {
  private readonly blobs: Blobs;
  private readonly layers: Layers;
  private readonly configs = new Map<Digest, ImageConfig>();
  private readonly dbFile: string;
  private readonly lockFile: string;
  /** This handle took the process's lease (open({ writer: true })). */
  private ownsLease = false;
  /** Layer trees taken out of the store under the lock, to delete after it (deleteContent). */
  private readonly doomed: string[] = [];

  private constructor(readonly root: string) {
    this.blobs = new Blobs(root);
    this.layers = new Layers(root);
    this.dbFile = path.join(root, 'images.json');
    this.lockFile = path.join(root, 'images.lock');
  }

  /**
   * Opens (creating if needed) the store at `root`, and removes what killed processes left.
   * `writer`: this process will write layers or blobs (pull, load, commit, build): it takes a
   * lease first, so that garbage collection leaves alone what it reuses or writes before it
   * records its image (leases.ts).
   */
  /**
   * `sweep: false` skips the housekeeping every other open does: removing the leases of dead
   * processes and what killed processes left in tmp/ and layers/. A lookup (`run`, `create`,
   * `inspect`) needs none of it, and it is several directory reads on the way to a container's
   * start. Leftovers wait for the next command that writes or lists.
   */
  static async open(root: string, opts: { writer?: boolean; sweep?: boolean } = {}): Promise<ImageStore> {
    const abs = path.resolve(root);
    const store = new ImageStore(abs);
    try {
      // Synchronous calls, here and where an image is looked up (readDb, config, Layers.get):
      // a lookup is a few small reads, and a `run` that never touches libuv's thread pool
      // saves the ~5 ms of starting it.
      for (const dir of ['blobs/sha256', 'layers', 'l', 'tmp']) mkdirSync(path.join(abs, dir), { recursive: true, mode: 0o700 });
      if (!existsSync(store.dbFile)) {
        await withLock(store.lockFile, async () => {
          if (!(await fs.stat(store.dbFile).then(() => true, () => false))) await store.saveDb(emptyDb());
        });
      }
      if (opts.writer) store.ownsLease = await withLock(store.lockFile, async () => takeLease(abs));
    } catch (err) {
      // Typically EACCES: the default root needs root; --root or TSRUN_ROOT choose another.
      throw wrap('EINTERNAL', `opening the image store at ${abs}`, err);
    }
    if (opts.sweep !== false) await store.cleanup().catch(() => {});
    return store;
  }

  /**
   * Ends the lease open({ writer: true }) took: what this process wrote is recorded. A lease this
   * handle did not take (the process held one already) stays with whoever took it.
   */
  releaseLease(): void {
    if (!this.ownsLease) return;
    releaseLease();
    this.ownsLease = false;
  }

  // ---- blobs ---------------------------------------------------------------------------

  blobPath(digest: Digest): string {
    return this.blobs.path(digest);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return this.blobs.has(digest);
  }

  async readBlob(digest: Digest): Promise<Buffer> {
    return this.blobs.read(digest);
  }

  /** Streams a blob in: temp file, hashed while written, verified (EDIGEST), renamed. */
  async writeBlob(source: AsyncIterable<Uint8Array>, expected: Expected): Promise<void> {
    return this.blobs.write(source, expected);
  }

  /** Stores bytes (verified against `expected` when given); returns their digest. */
  async writeBlobBytes(bytes: Uint8Array, expected?: Expected): Promise<Digest> {
    return this.blobs.writeBytes(bytes, expected);
  }

  /** A blob file this process wrote and hashed itself, under <root>/tmp: renamed into place (blobs.ts). */
  async adoptBlob(file: string, expected: { digest: Digest; size: number }): Promise<void> {
    await this.blobs.adopt(file, expected);
  }

  blobStream(digest: Digest): Readable {
    return this.blobs.stream(digest);
  }

  /**
   * A fresh private directory under <root>/tmp (same file system as the store, so renames into
   * it are atomic). Removed by the caller; if the process dies, by the next open.
   */
  async makeTempDir(label = 'tmp'): Promise<string> {
    const dir = path.join(this.root, 'tmp', `${tempName()}-${label}`);
    await fs.mkdir(dir, { mode: 0o700 });
    return dir;
  }

  // ---- layers --------------------------------------------------------------------------

  /** The unpacked layer with this chain ID, if present. */
  async layer(chainId: Digest): Promise<LayerRecord | undefined> {
    return this.layers.get(checkDigest(chainId, 'chain ID'));
  }

  /**
   * Unpacks an uncompressed layer tar (chain ID from `parentChainId` and `diffId`), verifying
   * that the tar hashes to `diffId`. Reads `tar` to its end in every case; when the layer is
   * already present, it is only verified and the existing one returned. `before`: the layer goes
   * into place only once it settles, and not at all if it rejects (a pull's blob, see pull.ts).
   */
  async unpackLayer(diffId: Digest, parentChainId: Digest | null, tar: AsyncIterable<Uint8Array>, before?: Promise<unknown>): Promise<LayerRecord> {
    return this.layers.unpack(checkDigest(diffId, 'diff ID'), parentChainId, tar, {}, before);
  }

  /**
   * Completes what unpacking left for the layers below to decide (layers.ts `finish`): needed
   * before a chain no image records yet is mounted (a build step's container).
   */
  async finishLayers(chains: Digest[]): Promise<void> {
    await this.layers.finish(chains);
  }

  // ---- build cache ---------------------------------------------------------------------

  /** The build cache as recorded now (one read for a whole build's lookups). */
  async cacheEntries(): Promise<Record<string, CacheEntry>> {
    return (await this.readDb()).buildCache ?? {};
  }

  /**
   * The cache entry for a build step, if recorded and its layer and blob are still here.
   * `entries`: a snapshot from cacheEntries() (else images.json is read).
   */
  async cacheEntry(key: string, entries?: Record<string, CacheEntry>): Promise<CacheEntry | undefined> {
    const entry = (entries ?? (await this.cacheEntries()))[key];
    if (!entry?.layer) return entry;
    const { chainId, digest } = entry.layer;
    if (!(await this.layers.get(chainId)) || !(await this.hasBlob(digest))) return undefined;
    return entry;
  }

  /** Records (or refreshes the use time of) build steps' results, in one write. */
  async putCacheEntries(entries: Record<string, CacheEntry>): Promise<void> {
    if (Object.keys(entries).length === 0) return;
    await this.locked(async (db, save) => {
      db.buildCache = { ...(db.buildCache ?? {}), ...entries };
      await save();
    });
  }

  /**
   * builder prune: drops cache entries (all, or those not used since `before`), then the layers
   * and blobs nothing else references. Returns the entries dropped and the bytes freed.
   */
  async pruneCache(opts: { before?: Date } = {}): Promise<{ entries: number; reclaimed: number }> {
    return this.locked(async (db, save) => {
      const gone: CacheEntry[] = [];
      for (const [key, entry] of Object.entries(db.buildCache ?? {})) {
        if (opts.before !== undefined && new Date(entry.used) >= opts.before) continue;
        gone.push(entry);
        delete db.buildCache![key];
      }
      await save();
      const keep = referenced(db);
      const layers = unique(gone.flatMap((e) => (e.layer ? [e.layer.chainId] : []))).filter((l) => !keep.layers.has(l));
      const blobs = unique(gone.flatMap((e) => (e.layer ? [e.layer.digest] : []))).filter((b) => !keep.blobs.has(b));
      let reclaimed = 0;
      for (const l of layers) reclaimed += (await this.layers.get(l).catch(() => undefined))?.size ?? 0;
      for (const b of blobs) reclaimed += (await fs.stat(this.blobPath(b)).catch(() => undefined))?.size ?? 0;
      await this.deleteContent(layers.reverse(), blobs);
      return { entries: gone.length, reclaimed };
    });
  }

  /** Build cache entries and the bytes of the layers only they hold (system df). */
  async cacheUsage(): Promise<{ entries: number; size: number }> {
    const db = await this.readDb();
    const entries = Object.values(db.buildCache ?? {});
    const images = referenced({ ...db, buildCache: {} });
    let size = 0;
    for (const e of entries) {
      if (e.layer && !images.layers.has(e.layer.chainId)) size += (await this.layers.get(e.layer.chainId).catch(() => undefined))?.size ?? 0;
    }
    return { entries: entries.length, size };
  }

  /**
   * Unpacks a layer tar tsrun makes itself as it goes (a build's COPY): its diff ID is what it
   * hashes to, known once it has all been read. Through the same safe unpack as any layer.
   */
  async unpackOwnLayer(parentChainId: Digest | null, tar: AsyncIterable<Uint8Array>): Promise<LayerRecord> {
    return this.layers.unpack(undefined, parentChainId, tar);
  }

  // ---- images --------------------------------------------------------------------------

  /**
   * Records an image whose config blob and layers are already in the store; `names` are
   * references (normalized here); a name@digest adds a repo digest, not a tag. A name that
   * pointed at another image moves to this one (the other one stays, untagged).
   */
  async putImage(p: { manifestDigest: Digest; manifest: ImageManifest; configDigest: Digest; names: string[]; also?: Digest[] }): Promise<StoredImage> {
    const manifestDigest = checkDigest(p.manifestDigest, 'manifest digest');
    const configDigest = checkDigest(p.configDigest, 'config digest');
    if (p.manifest.config?.digest !== configDigest) {
      throw new TsrunError('EBADIMAGE', `manifest ${manifestDigest} names config ${p.manifest.config?.digest}, not ${configDigest}`);
    }
    const config = await this.config(configDigest);
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== p.manifest.layers.length) {
      throw new TsrunError('EBADIMAGE', `image ${configDigest}: ${p.manifest.layers.length} layers in the manifest but ${diffIds.length} diff_ids in the config`);
    }
    const chains = chainIds(diffIds);
    const tags: string[] = [];
    const repoDigests: string[] = [];
    for (const name of p.names) {
      const ref = parseReference(name);
      if (ref.tag !== undefined) tags.push(`${repositoryName(ref)}:${ref.tag}`);
      repoDigests.push(`${repositoryName(ref)}@${manifestDigest}`);
    }
    const blobs: Digest[] = [];
    // `also`: more blobs the image holds, the index a pull chose its manifest from.
    for (const d of [manifestDigest, configDigest, ...p.manifest.layers.map((l) => l.digest), ...(p.also ?? [])]) {
      if (isDigest(d) && (await this.hasBlob(d))) blobs.push(d);
    }
    for (const c of chains) {
      if (!(await this.layers.get(c))) throw new TsrunError('EBADIMAGE', `image ${configDigest}: layer ${c} is not in the store`);
    }
    await this.layers.finish(chains);
    return this.locked(async (db, save) => {
      for (const c of chains) {
        if (!(await this.layers.get(c))) throw new TsrunError('EBADIMAGE', `image ${configDigest}: layer ${c} is not in the store`);
      }
      // Asked again under the lock: a blob deleted since is not one the image holds.
      for (const b of [...blobs]) if (!(await this.hasBlob(b))) blobs.splice(blobs.indexOf(b), 1);
      if (!blobs.includes(manifestDigest) || !blobs.includes(configDigest)) {
        throw new TsrunError('EBADIMAGE', `image ${configDigest}: its manifest or config is no longer in the store`);
      }
      const old = db.images[manifestDigest];
      // The same image again under names it already has (a cached rebuild): nothing to write.
      if (old && repoDigests.every((r) => old.repoDigests.includes(r)) && tags.every((t) => db.names[t] === manifestDigest) && blobs.every((b) => old.blobs.includes(b))) {
        return this.record(db, manifestDigest);
      }
      db.images[manifestDigest] = {
        id: configDigest,
        layers: chains,
        blobs: union(old?.blobs, blobs),
        repoDigests: union(old?.repoDigests, repoDigests),
        added: old?.added ?? new Date().toISOString(),
      };
      for (const t of tags) db.names[t] = manifestDigest;
      await save();
      return this.record(db, manifestDigest);
    });
  }

  /**
   * Finds an image by name (`busybox`, `docker.io/library/busybox:latest`), by `name@sha256:…`,
   * or by image ID (`sha256:<64 hex>`, or a unique prefix of 3 or more hex digits).
   */
  async resolve(nameOrId: string): Promise<StoredImage | undefined> {
    const db = await this.readDb();
    const m = lookup(db, nameOrId);
    return m === undefined ? undefined : this.record(db, m);
  }

  /** Every image, newest first. */
  async list(): Promise<StoredImage[]> {
    const db = await this.readDb();
    const out: StoredImage[] = [];
    // Lenient: an image with a missing layer is still listed (so it can be seen and removed).
    for (const m of Object.keys(db.images)) out.push(await this.record(db, m as Digest, false));
    return out.sort((a, b) => compareStrings(createdOf(b), createdOf(a)));
  }

  /** Points `newName` at the image `idOrName` refers to. */
  async tag(idOrName: string, newName: string): Promise<StoredImage> {
    const ref = parseReference(newName);
    if (ref.digest !== undefined) throw new TsrunError('EINVAL_REF', `cannot tag with a digest: ${newName}`);
    const name = normalizeName(newName);
    return this.locked(async (db, save) => {
      const m = lookup(db, idOrName);
      if (m === undefined) throw noSuchImage(idOrName);
      db.names[name] = m;
      await save();
      return this.record(db, m);
    });
  }

  /** Removes one name; the image stays (untagged if that was its last name). */
  async untag(name: string): Promise<Digest> {
    return this.locked(async (db, save) => {
      const key = nameKey(db, name);
      if (key === undefined) throw noSuchImage(name);
      const m = db.names[key]!;
      delete db.names[key];
      await save();
      return m;
    });
  }

  /**
   * docker rmi: by name, removes that name, and the image too if it was the last one; by ID,
   * removes the image and all its names (refused without `force` when it has several).
   * Layers and blobs no other image uses are deleted; shared ones stay.
   */
  async removeImage(idOrName: string, options: RemoveOptions = {}): Promise<RemoveResult> {
    return this.locked(async (db, save) => {
      const before = structuredClone(db);
      const m = lookup(db, idOrName);
      if (m === undefined) throw noSuchImage(idOrName);
      const key = nameKey(db, idOrName);
      if (key !== undefined && namesOf(db, m).length > 1) {
        delete db.names[key];
        await save();
        return { untagged: [key], deleted: [] };
      }
      const id = db.images[m]!.id;
      const targets = key !== undefined ? [m] : (Object.keys(db.images) as Digest[]).filter((d) => db.images[d]!.id === id);
      const names = targets.flatMap((t) => namesOf(db, t));
      if (key === undefined && names.length > 1 && !options.force) {
        throw new TsrunError(
          'ESTATE',
          `conflict: unable to delete ${hexOf(id).slice(0, 12)} (must be forced) - image is referenced in multiple repositories`,
        );
      }
      const gone: ImageEntry[] = targets.map((t) => db.images[t]!);
      for (const n of names) delete db.names[n];
      for (const t of targets) delete db.images[t];
      await save();
      crashPoint('rmi:untagged');
      // A container being created checks that its image is still recorded after it has said
      // it uses it (ImageRemoveGuard): asked again now, after the record changed, one of the
      // two always sees the other.
      const user = await options.userOf?.(id);
      if (user !== undefined) {
        Object.assign(db, before);
        await save();
        throw new TsrunError('ESTATE', `conflict: unable to delete ${hexOf(id).slice(0, 12)} (must be forced) - image is being used by ${user}`);
      }
      // Deleted only after images.json no longer mentions them, and still under the lock, so
      // a concurrent putImage cannot start using a layer we are about to delete.
      const keep = referenced(db);
      const mounted = (await options.mountedLayers?.()) ?? new Set<string>();
      const layers = await this.unmounted(unique(gone.flatMap((e) => e.layers)).filter((l) => !keep.layers.has(l)), mounted);
      const blobs = unique(gone.flatMap((e) => e.blobs)).filter((b) => !keep.blobs.has(b));
      await this.deleteContent(layers, blobs);
      // The same image recorded under another manifest (pulled, and loaded from an archive)
      // is still listed: docker says only Untagged, and deletes the image with its last name.
      if (Object.values(db.images).some((e) => e.id === id)) return { untagged: names, deleted: [] };
      return { untagged: names, deleted: [id, ...layers.reverse()] };
    });
  }

  /**
   * Deletes layers and blobs that no image references: what a failed load or pull made
   * (nothing else may trust them). Referenced ones are kept.
   */
  async discard(p: { layers?: Digest[]; blobs?: Digest[] }): Promise<void> {
    await this.locked(async (db) => {
      const keep = referenced(db);
      await this.deleteContent(
        (p.layers ?? []).filter((l) => !keep.layers.has(l)),
        (p.blobs ?? []).filter((b) => !keep.blobs.has(b)),
      );
    });
  }

  /**
   * Garbage collection: deletes every layer and blob that images.json and the build cache do
   * not reference and no container mounts (`mounted`: the layer links, `l/<26 chars>`, that
   * containers mount), then dangling layer links. Under the store's lock, and only while no
   * writer holds a live lease: then nothing unreferenced can become referenced, and what is
   * unreferenced is what killed writers or a killed rmi left, or what rmi and prune let go.
   */
  async collect(mounted: Set<string>): Promise<Collected> {
    return this.locked(async (db) => {
      const leases = readLeases(this.root);
      sweepLeases(this.root, leases.dead);
      if (leases.live.length > 0) return { layers: [], blobs: [], writers: leases.live };
      const { layers, blobs } = await this.unreferenced(db, mounted);
      await this.deleteContent(layers, blobs);
      for (const name of await fs.readdir(path.join(this.root, 'l')).catch(() => [] as string[])) {
        const link = path.join(this.root, 'l', name);
        if ((await fs.stat(link).catch(() => undefined)) === undefined) await fs.unlink(link).catch(() => {});
      }
      // compressed/<hex> records whose plain layer went.
      for (const hex of await fs.readdir(path.join(this.root, 'compressed')).catch(() => [] as string[])) {
        if (/^[a-f0-9]{64}$/.test(hex) && !(await this.hasBlob(`sha256:${hex}` as Digest))) await fs.rm(path.join(this.root, 'compressed', hex), { force: true });
      }
      return { layers, blobs, writers: [] };
    });
  }

  /**
   * What collect would delete now, and the live and dead leases (system check). Read without
   * the lock: a report, not a decision.
   */
  async garbage(mounted: Set<string>): Promise<{ layers: Digest[]; blobs: Digest[]; leases: { live: string[]; dead: string[] } }> {
    // Leases first: a writer that records and ends in between must not make its content look unreferenced.
    const leases = readLeases(this.root);
    return { ...(await this.unreferenced(await this.readDb(), mounted)), leases };
  }

  /**
   * Whether images.json still records an image with this ID: asked by a container being created
   * after it has marked itself as the image's user (see RemoveOptions.userOf).
   */
  async holds(id: Digest): Promise<boolean> {
    const db = await this.readDb();
    return Object.values(db.images).some((e) => e.id === id);
  }

  /** What images.json records but the store lacks (system check): a config or a layer. */
  async verify(): Promise<Array<{ image: string; detail: string }>> {
    const db = await this.readDb();
    const out: Array<{ image: string; detail: string }> = [];
    for (const m of Object.keys(db.images) as Digest[]) {
      const entry = db.images[m]!;
      const image = namesOf(db, m)[0] ?? hexOf(entry.id).slice(0, 12);
      if (!(await this.hasBlob(entry.id))) out.push({ image, detail: `its config ${entry.id} is missing` });
      for (const c of entry.layers) if (!(await this.layers.get(c).catch(() => undefined))) out.push({ image, detail: `its layer ${c} is missing` });
    }
    return out;
  }

  async usage(): Promise<StoreUsage> {
    const db = await this.readDb();
    let layerSize = 0;
    const chains = await this.layers.list();
    for (const c of chains) layerSize += (await this.layers.get(c).catch(() => undefined))?.size ?? 0;
    return { images: Object.keys(db.images).length, layers: { count: chains.length, size: layerSize }, blobs: await this.blobs.usage() };
  }

  /** The parsed config blob (cached). */
  async config(configDigest: Digest): Promise<ImageConfig> {
    const cached = this.configs.get(configDigest);
    if (cached) return cached;
    let bytes: Buffer;
    try {
      const file = this.blobPath(configDigest);
      if (statSync(file).size > MAX_CONFIG_BYTES) throw new TsrunError('EBADIMAGE', `config ${configDigest} is too large`);
      bytes = readFileSync(file);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'EISDIR') throw new TsrunError('EBADIMAGE', `config ${configDigest} is not in the store`);
      throw err;
    }
    if (bytes.length > MAX_CONFIG_BYTES) throw new TsrunError('EBADIMAGE', `config ${configDigest} is too large`);
    const config = parseConfig(bytes, configDigest);
    this.configs.set(configDigest, config);
    return config;
  }

  // ---- internals -----------------------------------------------------------------------

  private async readDb(): Promise<ImagesDb> {
    let text: string;
    try {
      text = readFileSync(this.dbFile, 'utf8');
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return emptyDb();
      throw err;
    }
    return parseDb(text, this.dbFile);
  }

  private async saveDb(db: ImagesDb): Promise<void> {
    await writeFileAtomic(this.dbFile, JSON.stringify(db, null, 2) + '\n', 0o600);
  }

  /** Read-modify-write of images.json under the store's lock; then the deletes it left (deleteContent). */
  private async locked<T>(fn: (db: ImagesDb, save: () => Promise<void>) => Promise<T>): Promise<T> {
    try {
      return await withLock(this.lockFile, async () => {
        const db = await this.readDb();
        return fn(db, () => this.saveDb(db));
      });
    } finally {
      for (const dir of this.doomed.splice(0)) await removeTree(dir).catch(() => {});
    }
  }

  /** The ImageRecord for an images.json entry; `strict`: every layer must be present. */
  private async record(db: ImagesDb, manifestDigest: Digest, strict = true): Promise<StoredImage> {
    const entry = db.images[manifestDigest];
    if (!entry) throw new TsrunError('EINTERNAL', `image ${manifestDigest} vanished from images.json`);
    const config = strict ? await this.config(entry.id) : await this.config(entry.id).catch(() => brokenConfig(entry.layers.length));
    const layers: LayerRecord[] = [];
    for (const c of entry.layers) {
      const l = await this.layers.get(c);
      if (l) layers.push(l);
      else if (strict) throw new TsrunError('EBADIMAGE', `image ${entry.id}: layer ${c} is missing from the store (remove the image and pull it again)`);
    }
    return {
      id: entry.id,
      manifestDigest,
      names: namesOf(db, manifestDigest),
      config,
      layers,
      size: layers.reduce((sum, l) => sum + l.size, 0),
      repoDigests: entry.repoDigests,
      added: entry.added,
    };
  }

  /** Layers and blobs that nothing references and no container mounts. */
  private async unreferenced(db: ImagesDb, mounted: Set<string>): Promise<{ layers: Digest[]; blobs: Digest[] }> {
    const keep = referenced(db);
    // The gzip push made of a layer kept as a plain tar (compressed.ts) goes with that layer.
    const gzips = path.join(this.root, 'compressed');
    for (const hex of await fs.readdir(gzips).catch(() => [] as string[])) {
      if (!keep.blobs.has(`sha256:${hex}` as Digest)) continue;
      const gzip = await fs.readFile(path.join(gzips, hex), 'utf8').then((t) => (JSON.parse(t) as { digest?: unknown }).digest, () => undefined);
      if (typeof gzip === 'string' && isDigest(gzip)) keep.blobs.add(gzip);
    }
    const layers = await this.unmounted((await this.layers.list()).filter((c) => !keep.layers.has(c)), mounted);
    const blobs = (await this.blobs.list()).filter((b) => !keep.blobs.has(b));
    return { layers, blobs };
  }

  /** Of these layers, those whose link (`l/<26 chars>`) no container mounts. */
  private async unmounted(chains: Digest[], mounted: Set<string>): Promise<Digest[]> {
    const out: Digest[] = [];
    for (const chain of chains) {
      const link = (await this.layers.get(chain).catch(() => undefined))?.link;
      if (link === undefined || !mounted.has(link)) out.push(chain);
    }
    return out;
  }

  /**
   * Takes layers and blobs out of the store (the caller holds the lock). The layers' trees are
   * deleted once the lock is let go (locked): a prune of gigabytes must not hold every pull and
   * run waiting on the lock.
   */
  private async deleteContent(layers: Digest[], blobs: Digest[]): Promise<void> {
    // Another process writing may be about to record what is no longer referenced here (a pull
    // that found a layer "already exists", a load that lost the race to unpack one): left to
    // garbage collection, which waits for no writer to be alive (collect).
    if (othersWriting(this.root)) return;
    for (const l of layers) {
      const doomed = await this.layers.remove(l);
      if (doomed !== undefined) this.doomed.push(doomed);
    }
    for (const b of blobs) await this.blobs.remove(b);
  }

  private async cleanup(): Promise<void> {
    await this.layers.cleanup();
    sweepLeases(this.root, readLeases(this.root).dead);
    const tmp = path.join(this.root, 'tmp');
    for (const name of await fs.readdir(tmp)) {
      const full = path.join(tmp, name);
      if (await isAbandoned(full, ownerPid(name))) await removeTree(full).catch(() => {});
    }
    // writeFileAtomic's temp copies of images.json, from a process killed mid-write.
    const prefix = `.${path.basename(this.dbFile)}.`;
    for (const name of await fs.readdir(this.root)) {
      const pid = ownerPid(name, prefix);
      if (pid !== undefined && (await isAbandoned(path.join(this.root, name), pid))) await fs.rm(path.join(this.root, name), { force: true });
    }
  }
}

function noSuchImage(input: string): TsrunError {
  return new TsrunError('ENOIMAGE', `No such image: ${input}`);
}

function parseConfig(bytes: Buffer, digest: Digest): ImageConfig {
  let config: ImageConfig;
  try {
    config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new TsrunError('EBADIMAGE', `config ${digest} is not valid JSON`, { cause: err });
  }
  const diffIds = config?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every(isDigest)) {
    throw new TsrunError('EBADIMAGE', `config ${digest} has no valid rootfs.diff_ids`);
  }
  return config;
}

/** Stands in for a config blob that went missing, so `images` can still show the image. */
function brokenConfig(layers: number): ImageConfig {
  return { architecture: 'unknown', os: 'unknown', rootfs: { type: 'layers', diff_ids: new Array<Digest>(layers).fill(`sha256:${'0'.repeat(64)}`) } };
}

function createdOf(i: StoredImage): string {
  return i.config.created ?? i.added;
}

function union<T>(a: T[] | undefined, b: T[]): T[] {
  return unique([...(a ?? []), ...b]);
}

