// How a user-namespaced container's image files get owners it can use.
//
// `idmap` (the default): the helper idmaps the store for the container (native/userns.c);
// nothing on disk changes. Where the kernel or the store's file system cannot do that (overlayfs,
// tmpfs before Linux 6.3, overlay layers before 5.19), the first such start fails at the
// idmap-mount or the overlay mount; tsrun then records that in `<store>/userns/files` and uses
// `copy`: each layer copied once per map with every owner shifted into the map (cached under
// `<store>/userns/<map>/`), the container's upper dir owned by its root, and the store
// traversable (0711) by that unprivileged uid — docker's userns-remap does the same.
// TSRUN_USERNS_FILES=idmap|copy forces one.
import { createRequire } from 'node:module';
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { mapKey, type IdMap, type UsernsOption } from './userns.js';
import { ownerGone } from '../sys/proc.js';

/** node:child_process, loaded when a copy is made: not by every `run` (it loads net and streams). */
const childProcess = () => createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');

export type UsernsFiles = 'idmap' | 'copy';

const markerPath = (storeRoot: string) => join(storeRoot, 'userns', 'files');

export function usernsFilesFor(storeRoot: string): UsernsFiles {
  const forced = process.env.TSRUN_USERNS_FILES;
  if (forced === 'idmap' || forced === 'copy') return forced;
  return existsSync(markerPath(storeRoot)) ? 'copy' : 'idmap';
}

/** Remember that this store cannot be idmapped, and why (shown by `tsrun info`). */
export function markNoIdmap(storeRoot: string, why: string): void {
  mkdirSync(join(storeRoot, 'userns'), { recursive: true, mode: 0o700 });
  writeFileSync(markerPath(storeRoot), `copy\n${why}\n`);
}

export function noIdmapReason(storeRoot: string): string | undefined {
  try {
    return readFileSync(markerPath(storeRoot), 'utf8').split('\n')[1];
  } catch {
    return undefined;
  }
}

/** A container id → the host id, or undefined when the map leaves it out (it shows as nobody). */
export function mapId(id: number, maps: IdMap[]): number | undefined {
  const m = maps.find((r) => id >= r.containerID && id < r.containerID + r.size);
  return m && m.hostID + (id - m.containerID);
}

/** A host id → the container id, or undefined when the map leaves it out. */
export function unmapId(id: number, maps: IdMap[]): number | undefined {
  const m = maps.find((r) => id >= r.hostID && id < r.hostID + r.size);
  return m && m.containerID + (id - m.hostID);
}

/** The id the kernel shows for one outside a map (kernel.overflowuid/overflowgid). */
const OVERFLOW_ID = 65534;

/**
 * How the owners on disk relate to a container's own where its files are shifted copies: the
 * disk holds host ids. For the commands that read or write its files from the host (cp,
 * export, commit); undefined (the identity) everywhere else.
 */
export type IdShift = Pick<UsernsOption, 'uidMap' | 'gidMap'>;

export interface Ids {
  uid: number;
  gid: number;
}

export function toContainerIds(shift: IdShift | undefined, ids: Ids): Ids {
  if (!shift) return { uid: ids.uid, gid: ids.gid };
  return { uid: unmapId(ids.uid, shift.uidMap) ?? OVERFLOW_ID, gid: unmapId(ids.gid, shift.gidMap) ?? OVERFLOW_ID };
}

export function toHostIds(shift: IdShift | undefined, ids: Ids): Ids {
  if (!shift) return { uid: ids.uid, gid: ids.gid };
  return { uid: mapId(ids.uid, shift.uidMap) ?? OVERFLOW_ID, gid: mapId(ids.gid, shift.gidMap) ?? OVERFLOW_ID };
}

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

/** Shift every owner under `dir` into the maps. chown clears set-id bits: they are put back. */
export function shiftOwners(dir: string, userns: Pick<UsernsOption, 'uidMap' | 'gidMap'>): void {
  const walk = (path: string) => {
    const st = lstatSync(path);
    const uid = mapId(st.uid, userns.uidMap) ?? st.uid;
    const gid = mapId(st.gid, userns.gidMap) ?? st.gid;
    lchownSync(path, uid, gid);
    if (!st.isSymbolicLink() && st.mode & (S_ISUID | S_ISGID)) chmodSync(path, st.mode & 0o7777);
    if (st.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
}

/**
 * The container's lower dirs (store-relative `l/<id>` links) as shifted copies, made once per
 * map; returns their store-relative paths, in the same order.
 */
export function shiftedLayers(storeRoot: string, lowerDirs: string[], userns: UsernsOption): string[] {
  const rel = join('userns', mapKey(userns));
  const dir = join(storeRoot, rel);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(join(storeRoot, 'userns'), 0o711);
  // The copies hold the image's set-id programs, owned by the map's host uids: only the
  // container's root (and the host's) may reach them, not any local user.
  ownByMappedRoot(dir, mappedRoot(userns));
  sweepDeadCopies(dir);
  return lowerDirs.map((lower) => {
    const name = basename(lower);
    const dest = join(dir, name);
    if (!existsSync(dest)) {
      const tmp = join(dir, `.tmp-${name}-${process.pid}`);
      rmSync(tmp, { recursive: true, force: true });
      // cp -a keeps hard links, devices, xattrs and times; reflinks where the file system can.
      childProcess().execFileSync('cp', ['-a', '--reflink=auto', realpathSync(join(storeRoot, lower)), tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
      shiftOwners(tmp, userns);
      try {
        renameSync(tmp, dest);
      } catch (err) {
        rmSync(tmp, { recursive: true, force: true });
        // Another tsrun made the same copy meanwhile: use it.
        if (errnoOf(err) !== 'ENOTEMPTY' && errnoOf(err) !== 'EEXIST') throw err;
      }
    }
    return join(rel, name);
  });
}

/**
 * What the container's root must reach as the unprivileged host uid it is: the store, its
 * containers dir and its own dir (traversable, not listable), its upper and work dirs (its own).
 */
export function prepareContainerDirs(storeRoot: string, containerDir: string, userns: UsernsOption): void {
  const root = mappedRoot(userns);
  for (let dir = dirname(storeRoot); ; dir = dirname(dir)) {
    if ((lstatSync(dir).mode & 0o001) === 0) {
      throw new TsrunError(
        'EUSERNS',
        `the store ${storeRoot} cannot be idmapped, and its copies of the layers are out of reach of the container's root (uid ${root.uid} on the host): ${dir} is not searchable by others; chmod o+x ${dir}, or use a store on a file system with idmapped mounts (ext4, xfs, btrfs)`,
      );
    }
    if (dir === '/') break;
  }
  // The store and its containers dir: searchable (not listable) by that uid. The container's
  // own dir: its root's alone (its upper dir may hold set-id programs of host uids too).
  for (const d of [storeRoot, join(storeRoot, 'containers')]) chmodSync(d, (lstatSync(d).mode & 0o777) | 0o711);
  ownByMappedRoot(containerDir, root);
  for (const d of ['upper', 'work']) {
    const path = join(containerDir, d);
    const st = lstatSync(path);
    if (st.uid !== root.uid) shiftOwners(path, userns); // once: a restart finds it done
  }
}

/** The host uid and gid the container's root is. */
function mappedRoot(userns: Pick<UsernsOption, 'uidMap' | 'gidMap'>): { uid: number; gid: number } {
  const uid = mapId(0, userns.uidMap);
  const gid = mapId(0, userns.gidMap);
  if (uid === undefined || gid === undefined) throw new TsrunError('EINVAL_FLAG', 'the user namespace does not map root');
  return { uid, gid };
}

function ownByMappedRoot(dir: string, root: { uid: number; gid: number }): void {
  lchownSync(dir, root.uid, root.gid);
  chmodSync(dir, 0o700);
}

/**
 * The copies a start killed half-way left (`.tmp-<layer>-<pid>`, whole layers), once their
 * process is gone: else only an `image prune` with no container of this map removes them.
 */
function sweepDeadCopies(dir: string): void {
  for (const name of readdirSync(dir)) {
    const m = /^\.tmp-.+-(\d+)$/.exec(name);
    if (m && ownerGone(Number(m[1]))) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

/** The copies no container uses any more (for `image prune`). */
export function pruneShiftedLayers(storeRoot: string, inUse: Set<string>): number {
  const base = join(storeRoot, 'userns');
  let removed = 0;
  let entries: string[];
  try {
    entries = readdirSync(base, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return 0;
  }
  for (const key of entries) {
    if (inUse.has(key)) continue;
    rmSync(join(base, key), { recursive: true, force: true });
    removed++;
  }
  return removed;
}
