// `tsrun diff` (docker diff): what the container changed, read from its overlay upper dir
// against the image's layers, without mounting anything.
//
// In the upper dir overlayfs records a deletion as a 0/0 character device (→ D), a directory
// whose lower contents were replaced as one with `trusted.overlay.opaque=y` (→ C, and D for
// what it hides), anything else is new (A) or shadows a lower entry (C). The directories
// above a change are listed as changed (C), as docker shows them.
//
// tsrun's own mount points are left out, as docker leaves out its "init" layer: the helper
// creates an empty /etc/hosts, /etc/hostname, /etc/resolv.conf (or /proc, /dev...) in the
// upper dir when the image lacks them, only to mount over it.
//
// The upper dir belongs to the container (a running one changes it as we read), so it is
// walked by fd (overlay/walk.ts); the layers are tsrun's, immutable, and looked up by path one
// component at a time, so that no symlink in them is ever followed.
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { OciSpec } from '../namespaces/spec.js';
import { cleanInRoot, failure } from './export.js';
import { isOpaque, isWhiteout, LowerLayers } from '../overlay/index.js';
import { fdPath, openDir, walk, type WalkEntry } from '../overlay/walk.js';
import type { Found } from './lookup.js';
import type { ContainerRef } from '../image/prune.js';
import { ContainerPaths } from './paths.js';
import { listIds, readCreatingMarker, readRecord } from './record.js';
import { tokenAlive } from '../sys/proc.js';
import { observe } from './status.js';
import { mapKey } from '../namespaces/userns.js';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** Absolute path in the container. */
  path: string;
}

/** Names in a directory of the container's, opened without following a symlink. */
export function readdirNoFollow(path: string): string[] {
  const fd = openDir(path);
  try {
    return fs.readdirSync(fdPath(fd));
  } finally {
    fs.closeSync(fd);
  }
}

/** Relative paths the container's spec mounts something on (candidates for placeholders). */
export function mountTargets(found: Found): Set<string> {
  const spec = JSON.parse(fs.readFileSync(found.paths.config, 'utf8')) as OciSpec;
  return new Set(spec.mounts.map((m) => cleanInRoot(m.destination)));
}

/**
 * Whether an upper entry is only a mount point the helper created: at a mount target, absent
 * from the image, and empty.
 */
export function isPlaceholder(e: WalkEntry, targets: Set<string>, lowers: LowerLayers): boolean {
  if (!targets.has(e.rel)) return false;
  if (e.st.isFile()) return e.st.size === 0 && !lowers.stat(e.rel);
  if (e.st.isDirectory()) return readdirNoFollow(e.path).length === 0 && !lowers.stat(e.rel);
  return false;
}

/** docker diff: the container's changes, sorted by path. */
export async function containerChanges(found: Found): Promise<Change[]> {
  return changesOf(found).catch((err: unknown) => {
    throw failure(err, `reading the changes of container ${found.record.name}`);
  });
}

async function changesOf(found: Found): Promise<Change[]> {
  const lowers = LowerLayers.of(found);
  const targets = mountTargets(found);
  const byPath = new Map<string, ChangeKind>();
  const add = (rel: string, kind: ChangeKind): void => {
    // Every directory above a change is itself changed (docker lists them as C).
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!byPath.has(parent)) byPath.set(parent, 'C');
    }
    byPath.set(rel, kind);
  };

  const upper = openDir(join(found.paths.dir, 'upper'));
  try {
    await walk(upper, '', (e) => {
      if (isPlaceholder(e, targets, lowers)) return false;
      if (isWhiteout(e.st)) {
        if (lowers.stat(e.rel)) add(e.rel, 'D');
        return false;
      }
      const lower = lowers.stat(e.rel);
      if (!lower) {
        add(e.rel, 'A');
        return true;
      }
      if (!e.st.isDirectory() || !lower.isDirectory()) {
        add(e.rel, 'C');
        return true;
      }
      if (isOpaque(e.path)) {
        add(e.rel, 'C');
        const present = new Set(readdirNoFollow(e.path));
        for (const name of lowers.list(e.rel)) if (!present.has(name)) add(`${e.rel}/${name}`, 'D');
        return true;
      }
      // A directory overlayfs only copied up (to hold a changed child) is not itself a change:
      // it is listed if something under it is, or if its owner or mode changed.
      if (e.st.mode !== lower.mode || e.st.uid !== lower.uid || e.st.gid !== lower.gid) add(e.rel, 'C');
      return true;
    });
  } finally {
    fs.closeSync(upper);
  }
  return [...byPath]
    .map(([rel, kind]) => ({ kind, path: `/${rel}` }))
    .sort((a, b) => comparePaths(a.path, b.path));
}

/** Component by component, so `/a/b` sorts right after `/a` (before `/a-b`), as a walk does. */
export function comparePaths(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

// ---- what the image commands need to know about containers ---------------------------------

/**
 * Every container's image and layers (rmi's "in use" check, image prune), whether it runs,
 * and with `sizes` the bytes in its upper dir (system df).
 */
export async function containerRefs(storeRoot: string, opts: { sizes?: boolean } = {}): Promise<ContainerRef[]> {
  const out: ContainerRef[] = [];
  for (const id of listIds(storeRoot)) {
    const paths = new ContainerPaths(storeRoot, id);
    const record = readRecord(paths);
    if (!record) continue;
    const status = observe(paths).status;
    const ref: ContainerRef = {
      id,
      name: record.name,
      imageId: record.imageId,
      lowerDirs: record.lowerDirs,
      active: status === 'running' || status === 'paused' || status === 'restarting',
      ...(record.options.userns && { usernsKey: mapKey(record.options.userns) }),
    };
    if (opts.sizes) ref.sizeRw = await upperSize(join(paths.dir, 'upper'));
    out.push(ref);
  }
  return out;
}

/**
 * A container that uses the image — made from it, or being made from it now — as rmi's
 * conflict names it; undefined when none does. Read fresh, under the image store's lock
 * (ImageStore.removeImage's userOf).
 */
export function imageUser(storeRoot: string, imageId: string): string | undefined {
  for (const id of listIds(storeRoot)) {
    const paths = new ContainerPaths(storeRoot, id);
    // The marker first, then the record: create writes its record before it removes its
    // marker, so a container between the two is seen by one read or the other.
    const marker = readCreatingMarker(paths);
    if (marker?.imageId === imageId && tokenAlive(marker.by)) return `container ${id.slice(0, 12)}, being created`;
    const record = readRecord(paths);
    if (record?.imageId !== imageId) continue;
    const status = observe(paths).status;
    return `${status === 'running' || status === 'paused' || status === 'restarting' ? 'running' : 'stopped'} container ${id.slice(0, 12)}`;
  }
  return undefined;
}

async function upperSize(dir: string): Promise<number> {
  let size = 0;
  let fd: number;
  try {
    fd = openDir(dir);
  } catch {
    return 0;
  }
  try {
    await walk(fd, '', (e) => {
      if (e.st.isFile()) size += e.st.size;
      return true;
    });
  } finally {
    fs.closeSync(fd);
  }
  return size;
}
