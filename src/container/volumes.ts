// Named volumes, as docker's `local` driver keeps them: a directory of the store that outlives
// the containers that mount it.
//
//   <root>/volumes/<name>/volume.json   { name, created, labels }
//   <root>/volumes/<name>/_data         what the containers see at their mount point
//
// `-v NAME:/path` and `--mount type=volume,source=NAME,target=/path` create the volume when it
// is missing; a container mounts its _data as a bind mount. A volume is in use while any
// container (running or not) names it, and then cannot be removed, as in docker.
//
// Anonymous volumes (`-v /path`, and each path of the image's VOLUME no other mount covers) are
// the same kind of volume, named with 64 random hex digits and labelled as docker labels them.
// `rm -v` and `run --rm` remove them with their container; `volume prune` removes the unused ones.
import { crashPoint } from '../sys/crash.js';
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  lchownSync,
  linkSync,
  openSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { errnoOf, TsrunError } from '../errors.js';
import { withLock } from '../sys/lock.js';
import type { LowerLayers } from '../overlay/index.js';
import { applyXattrs, carriedXattrs } from '../overlay/xattrs.js';
import { ContainerPaths } from './paths.js';
import { listIds, readRecord, writeJsonAtomic } from './record.js';
import { anonymousVolume, mountTarget, VOLUME_NAME, type ContainerOptions, type VolumeMount } from '../namespaces/options.js';
import { randomBytes } from '../sys/random.js';
import { compareStrings } from '../sys/order.js';


export interface Volume {
  name: string;
  created: string;
  labels: Record<string, string>;
}

/** docker's label of an anonymous volume (moby volume.AnonymousLabel): what `volume prune` without -a removes. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

export const isAnonymous = (v: Volume) => ANONYMOUS_LABEL in v.labels;

/** An anonymous volume's name: 64 random hex digits, as docker's. */
export function newAnonymousName(): string {
  return randomBytes(32).toString('hex');
}

/** The anonymous volume `name`, made (empty) for a container being created. */
export function makeAnonymousVolume(storeRoot: string, name: string): Volume {
  return ensureVolume(storeRoot, name, { labels: { [ANONYMOUS_LABEL]: '' } });
}

/**
 * The container's mounts with an anonymous volume for each path of the image's VOLUME that no
 * -v, --mount or --tmpfs of its own covers (docker's createContainerOSSpecificSettings). Each
 * goes before the mounts below it, so that they are mounted on top of it, not hidden by it.
 */
export function withImageVolumes(options: Pick<ContainerOptions, 'volumes' | 'tmpfs'>, imageVolumes: Record<string, unknown> | null | undefined): VolumeMount[] {
  const mounts = [...options.volumes];
  for (const path of Object.keys(imageVolumes ?? {})) {
    let target: string;
    try {
      target = mountTarget('VOLUME', path, path);
    } catch (err) {
      // mountTarget's reason, without the flag it would name.
      const why = (err as Error).message.replace(/^invalid argument ".*?" for "VOLUME" flag: /, '');
      throw new TsrunError('EINVAL_FLAG', `the image's VOLUME ${path} cannot be mounted: ${why}`, { cause: err });
    }
    if (mounts.some((m) => m.target === target) || options.tmpfs.some((t) => t.target === target)) continue;
    const below = mounts.findIndex((m) => m.target.startsWith(`${target}/`));
    mounts.splice(below < 0 ? mounts.length : below, 0, anonymousVolume(target, false));
  }
  return mounts;
}

export const volumesDir = (storeRoot: string) => join(storeRoot, 'volumes');
const volumeDir = (storeRoot: string, name: string) => join(volumesDir(storeRoot), name);

/** The directory a container mounts for volume `name`. */
export const volumeData = (storeRoot: string, name: string) => join(volumeDir(storeRoot, name), '_data');

function checkName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new TsrunError('EINVAL_FLAG', `invalid volume name "${name}": use two or more of a-z, A-Z, 0-9, _, . and -, starting with a letter or digit`);
  }
}

export function readVolume(storeRoot: string, name: string): Volume | undefined {
  checkName(name);
  try {
    return JSON.parse(readFileSync(join(volumeDir(storeRoot, name), 'volume.json'), 'utf8')) as Volume;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The volume `name`, made if it does not exist (docker's `volume create` of an existing name
 * returns it too). It is built aside and renamed into place, so no one sees half a volume.
 */
export function ensureVolume(storeRoot: string, name: string, opts: { labels?: Record<string, string> } = {}): Volume {
  const found = readVolume(storeRoot, name);
  if (found) return found;
  mkdirSync(volumesDir(storeRoot), { recursive: true, mode: 0o700 });
  const temp = join(volumesDir(storeRoot), `.new-${name}-${process.pid}`);
  const volume: Volume = { name, created: new Date().toISOString(), labels: opts.labels ?? {} };
  mkdirSync(join(temp, '_data'), { recursive: true, mode: 0o755 });
  writeJsonAtomic(join(temp, 'volume.json'), volume);
  crashPoint('volume-create:built');
  try {
    renameSync(temp, volumeDir(storeRoot, name));
  } catch (err) {
    rmSync(temp, { recursive: true, force: true });
    // Another tsrun made it meanwhile: that one is the volume.
    if (errnoOf(err) === 'ENOTEMPTY' || errnoOf(err) === 'EEXIST') return readVolume(storeRoot, name)!;
    throw err;
  }
  return volume;
}

export function listVolumes(storeRoot: string): Volume[] {
  let names: string[];
  try {
    names = readdirSync(volumesDir(storeRoot)).filter((n) => VOLUME_NAME.test(n));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
  return names.flatMap((n) => readVolume(storeRoot, n) ?? []).sort((a, b) => compareStrings(a.name, b.name));
}

/** Volume name → the containers (IDs) that name it, whatever their state: one read of each record. */
export function volumeUsers(storeRoot: string): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const id of listIds(storeRoot)) {
    for (const v of readRecord(new ContainerPaths(storeRoot, id))?.options.volumes ?? []) {
      if (v.volume) users.set(v.volume, [...(users.get(v.volume) ?? []), id]);
    }
  }
  return users;
}

/** docker's `volume inspect`. */
export function inspectVolume(storeRoot: string, name: string): Record<string, unknown> {
  const v = readVolume(storeRoot, name);
  if (!v) throw new TsrunError('ENOVOLUME', `no such volume: ${name}`);
  return { CreatedAt: v.created, Driver: 'local', Labels: v.labels, Mountpoint: volumeData(storeRoot, name), Name: v.name, Options: {}, Scope: 'local' };
}

/**
 * docker's copy-up: an empty volume mounted where the image has a directory first gets that
 * directory's content (owners, modes, times, symbolic and hard links, file capabilities), so `-v html:/usr/share/nginx/html` starts
 * with the image's pages.
 */
export function fillFromImage(storeRoot: string, name: string, layers: LowerLayers, target: string): void {
  const data = volumeData(storeRoot, name);
  if (readdirSync(data).length > 0) return;
  const rel = target.replace(/^\/+/, '');
  if (!layers.find(rel)?.st.isDirectory()) return;
  // Built where no container reaches (a running one may have this volume mounted and plant
  // links in it), then each top entry renamed in: rename replaces a planted link, never follows it.
  const staging = join(volumeDir(storeRoot, name), `.fill-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { mode: 0o700 });
  const own = (path: string, st: Stats) => lchownSync(path, st.uid, st.gid);
  const copied = new Map<string, string>(); // a layer file's dev:ino → its copy (hard links)
  const copyDir = (from: string, to: string) => {
    for (const entry of layers.list(from)) {
      const found = layers.find(`${from}/${entry}`)!;
      const dest = join(to, entry);
      const { st } = found;
      const key = `${st.dev}:${st.ino}`;
      if (st.isFile() && st.nlink > 1 && copied.has(key)) {
        linkSync(copied.get(key)!, dest);
        continue;
      }
      if (st.isDirectory()) {
        mkdirSync(dest, { mode: st.mode & 0o7777 });
        copyDir(`${from}/${entry}`, dest);
      } else if (st.isSymbolicLink()) {
        symlinkSync(readlinkSync(found.path), dest);
      } else if (st.isFile()) {
        copyFileSync(found.path, dest);
        copied.set(key, dest);
      } else {
        continue; // device nodes, FIFOs and sockets stay in the image
      }
      own(dest, st);
      if (st.isSymbolicLink()) continue;
      chmodSync(dest, st.mode & 0o7777);
      // After the chown, which clears file capabilities (ping's cap_net_raw).
      const xattrs = carriedXattrs(found.path);
      if (xattrs.length > 0) {
        const fd = openSync(dest, constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          applyXattrs(fd, xattrs);
        } finally {
          closeSync(fd);
        }
      }
      utimesSync(dest, st.atime, st.mtime);
    }
  };
  try {
    copyDir(rel, staging);
    for (const entry of readdirSync(staging)) {
      try {
        renameSync(join(staging, entry), join(data, entry));
      } catch (err) {
        // Someone else filled it meanwhile (a directory there now): theirs stands.
        if (!['ENOTEMPTY', 'EEXIST', 'EISDIR', 'ENOTDIR'].includes(errnoOf(err) ?? '')) throw err;
      }
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  const top = layers.find(rel)!.st;
  own(data, top);
  chmodSync(data, top.mode & 0o7777);
}

/**
 * Held while a container that names volumes is created (until its record is written) and while
 * a volume is removed: a volume is never removed between a create's check and its record.
 */
export function withVolumesLock<T>(storeRoot: string, fn: () => Promise<T> | T): Promise<T> {
  return withLock(join(volumesDir(storeRoot), '.lock'), fn);
}

/** Remove a volume and its data; refused while a container names it. `force` (docker's -f): no error if it does not exist. */
export function removeVolume(storeRoot: string, name: string, opts: { force?: boolean } = {}): Promise<void> {
  return withVolumesLock(storeRoot, () => {
    if (!readVolume(storeRoot, name)) {
      if (opts.force) return;
      throw new TsrunError('ENOVOLUME', `no such volume: ${name}`);
    }
    const users = volumeUsers(storeRoot).get(name) ?? [];
    if (users.length > 0) {
      throw new TsrunError('ESTATE', `remove ${name}: volume is in use - [${users.map((id) => id.slice(0, 12)).join(', ')}]`);
    }
    deleteVolume(storeRoot, name);
  });
}

/** Under the lock, of a volume no container names: out of the way first (atomically), then deleted. */
function deleteVolume(storeRoot: string, name: string): void {
  const trash = join(volumesDir(storeRoot), `.removing-${name}-${process.pid}`);
  renameSync(volumeDir(storeRoot, name), trash);
  crashPoint('volume-rm:renamed');
  rmSync(trash, { recursive: true, force: true });
}

/**
 * Remove those of `names` that exist and no container names (the anonymous volumes of a container
 * just removed: another container may have been given one by name). Returns the names removed.
 * `locked`: the caller holds the volumes lock (a create that found a killed create's debris).
 */
export function removeUnusedVolumes(storeRoot: string, names: string[], opts: { locked?: boolean } = {}): Promise<string[]> {
  const remove = () => {
    const users = volumeUsers(storeRoot);
    const gone = names.filter((n) => VOLUME_NAME.test(n) && !users.has(n) && readVolume(storeRoot, n));
    for (const n of gone) deleteVolume(storeRoot, n);
    return gone;
  };
  if (names.length === 0) return Promise.resolve([]);
  return opts.locked ? Promise.resolve(remove()) : withVolumesLock(storeRoot, remove);
}

/** The names of a container's anonymous volumes. */
export function anonymousVolumesOf(mounts: VolumeMount[]): string[] {
  return mounts.flatMap((m) => (m.anonymous && m.volume ? [m.volume] : []));
}

/** Remove every anonymous volume no container names (`all`: every volume); returns their names. */
export function pruneVolumes(storeRoot: string, opts: { all: boolean }): Promise<string[]> {
  return withVolumesLock(storeRoot, () => {
    const removed: string[] = [];
    const users = volumeUsers(storeRoot);
    for (const v of listVolumes(storeRoot)) {
      if (users.has(v.name) || !(opts.all || isAnonymous(v))) continue;
      deleteVolume(storeRoot, v.name);
      removed.push(v.name);
    }
    return removed;
  });
}
