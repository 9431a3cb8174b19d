// images.json: which names point at which manifest, and what each image holds.
//
//   { "version": 1,
//     "names":  { "docker.io/library/busybox:latest": "sha256:<manifest>" },
//     "images": { "sha256:<manifest>": { "id": "sha256:<config>", "layers": [<chain IDs>],
//                                        "blobs": [...], "repoDigests": [...], "added": "..." } } }
//
// Readers read without a lock (the file is only ever replaced by rename, so it is always
// whole); every change is read-modify-write under an flock (see ImageStore.mutate).
import { TsrunError } from '../errors.js';
import { normalizeName, parseReference, repositoryName } from '../registry-client/reference.js';
import { hexOf } from './digest.js';
import type { Digest } from './types.js';
import { compareStrings } from '../sys/order.js';

export interface ImageEntry {
  /** Config digest: the image ID. */
  id: Digest;
  /** Chain IDs, bottom layer first. */
  layers: Digest[];
  /** Blobs this image owns in blobs/ (manifest, config, compressed layers we kept). */
  blobs: Digest[];
  /** repository@manifest-digest, for `name@sha256:...` references. */
  repoDigests: string[];
  /** When it came into this store (ISO 8601). */
  added: string;
}

export interface ImagesDb {
  version: 1;
  names: Record<string, Digest>;
  images: Record<string, ImageEntry>;
  /** `tsrun build`'s layer cache: step key → what the step made (src/build/cache.ts). */
  buildCache?: Record<string, CacheEntry>;
}

/** One build step's result, kept so a rebuild can reuse it. */
export interface CacheEntry {
  /** When the step ran: the history entry's `created`, so a cached rebuild gives the same image ID. */
  created: string;
  /** The layer the step made (none for ENV, WORKDIR, a RUN that changed nothing...). */
  layer?: { diffId: Digest; digest: Digest; size: number; mediaType: string; chainId: Digest };
  /** Last time a build used it (builder prune --filter until=...). */
  used: string;
}

export function emptyDb(): ImagesDb {
  return { version: 1, names: {}, images: {} };
}

export function parseDb(text: string, file: string): ImagesDb {
  let db: ImagesDb;
  try {
    db = JSON.parse(text) as ImagesDb;
  } catch (err) {
    throw new TsrunError('EINTERNAL', `${file} is not valid JSON; the store needs repair`, { cause: err });
  }
  if (db?.version !== 1 || typeof db.names !== 'object' || typeof db.images !== 'object') {
    throw new TsrunError('EINTERNAL', `${file}: unknown format (version ${String(db?.version)})`);
  }
  return db;
}

/** Names pointing at one manifest, sorted. */
export function namesOf(db: ImagesDb, manifestDigest: Digest): string[] {
  return Object.entries(db.names)
    .filter(([, d]) => d === manifestDigest)
    .map(([n]) => n)
    .sort();
}

/** Manifest digests whose image ID starts with `hexPrefix` (or equals a full ID). */
export function byIdPrefix(db: ImagesDb, hexPrefix: string): Digest[] {
  const want = `sha256:${hexPrefix}`;
  return Object.entries(db.images)
    .filter(([, e]) => e.id.startsWith(want))
    .sort(([, a], [, b]) => compareStrings(b.added, a.added))
    .map(([m]) => m as Digest);
}

/** Everything still referenced by some image: what garbage collection must keep. */
export function referenced(db: ImagesDb): { layers: Set<Digest>; blobs: Set<Digest> } {
  const layers = new Set<Digest>();
  const blobs = new Set<Digest>();
  for (const e of Object.values(db.images)) {
    for (const l of e.layers) layers.add(l);
    for (const b of e.blobs) blobs.add(b);
  }
  for (const c of Object.values(db.buildCache ?? {})) {
    if (!c.layer) continue;
    layers.add(c.layer.chainId);
    blobs.add(c.layer.digest);
  }
  return { layers, blobs };
}


const FULL_ID = /^(?:sha256:)?([a-f0-9]{64})$/;
const ID_PREFIX = /^(?:sha256:)?([a-f0-9]{3,63})$/;

/** The manifest digest `input` refers to, or undefined. Throws on an ambiguous ID prefix. */
export function lookup(db: ImagesDb, input: string): Digest | undefined {
  const full = FULL_ID.exec(input);
  if (full) {
    const byId = byIdPrefix(db, full[1]!)[0];
    if (byId) return byId;
    const asManifest = `sha256:${full[1]}`;
    return db.images[asManifest] ? (asManifest as Digest) : undefined;
  }
  if (input.includes('@')) {
    let ref;
    try {
      ref = parseReference(input);
    } catch {
      return undefined;
    }
    const want = `${repositoryName(ref)}@${ref.digest}`;
    const m = ref.digest;
    return m && db.images[m]?.repoDigests.includes(want) ? m : undefined;
  }
  const key = nameKey(db, input);
  if (key !== undefined) return db.names[key];
  const prefix = ID_PREFIX.exec(input);
  if (!prefix) return undefined;
  const matches = byIdPrefix(db, prefix[1]!);
  const ids = unique(matches.map((m) => db.images[m]!.id));
  if (ids.length > 1) {
    throw new TsrunError('EINVAL_REF', `image ID prefix "${input}" is ambiguous: it matches ${ids.map((i) => hexOf(i).slice(0, 12)).join(', ')}`);
  }
  return matches[0];
}

/** The images.json key for a name as typed (busybox → docker.io/library/busybox:latest). */
export function nameKey(db: ImagesDb, input: string): string | undefined {
  if (db.names[input] !== undefined) return input;
  let name: string;
  try {
    const ref = parseReference(input);
    if (ref.digest !== undefined) return undefined;
    name = normalizeName(input);
  } catch {
    return undefined;
  }
  return db.names[name] !== undefined ? name : undefined;
}

export function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
