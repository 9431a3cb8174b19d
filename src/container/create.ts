// `create`: everything a container is before it runs — a reserved name, a directory with
// upper/work/rootfs, its OCI config.json and /etc files, and container.json. Undone whole if
// any step fails.
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { writeFileNamed } from '../sys/atomic.js';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import type { Digest, ImageRecord } from '../image/types.js';
import { crashPoint } from '../sys/crash.js';
import { selfToken, tokenAlive } from '../sys/proc.js';
import type { ContainerOptions } from '../namespaces/options.js';
import { createSpec } from '../namespaces/spec.js';
import { allocateUserns, releaseUserns, releaseUsernsOf } from '../namespaces/userns.js';
import { inOwnUserns } from '../rootless.js';
import { cgroupMounts } from '../namespaces/cgroup-mounts.js';
import { containerDevices } from '../namespaces/devices.js';
import {
  anonymousVolumesOf,
  ensureVolume,
  fillFromImage,
  makeAnonymousVolume,
  newAnonymousName,
  removeUnusedVolumes,
  volumeData,
  withImageVolumes,
  withVolumesLock,
} from './volumes.js';
import { LowerLayers } from '../overlay/lower-layers.js';
import { mergeHealthcheck } from './healthcheck.js';
import { detectCgroups } from '../cgroups/index.js';
import { resolveUser } from './user.js';
import { hostCapabilities, hostHardLimits, hasCapSysResource } from './host.js';
import { generateName, newContainerId, validateName } from './names.js';
import { ContainerPaths, namesDir } from './paths.js';
import { portsToPublish, recipeFor, writeHosts, writeResolvConf } from './network.js';
import { DEFAULT_LOG_CONFIG, emptyState, readCreatingMarker, readRecord, writeJsonAtomic, type ContainerRecord, type LogConfig, type RestartPolicy } from './record.js';

export interface CreateRequest {
  storeRoot: string;
  image: ImageRecord;
  /** The image as the user named it. */
  imageName: string;
  options: ContainerOptions;
  restartPolicy?: RestartPolicy;
  logConfig?: LogConfig;
  /** A build step's container: which build made it (ContainerRecord.buildOwner). */
  buildOwner?: string;
}

async function reserveName(storeRoot: string, wanted: string | undefined, id: string, volumesLocked: boolean): Promise<string> {
  const dir = namesDir(storeRoot);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (let attempt = 0; ; attempt++) {
    const name = wanted === undefined ? generateName() : validateName(wanted);
    try {
      // symlink(2) fails with EEXIST if the name is taken: an atomic reservation across processes.
      symlinkSync(join('..', 'containers', id), join(dir, name));
      return name;
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      // Held by what a killed create left (no container.json, its maker dead): free again.
      if (await releaseDebrisName(storeRoot, name, volumesLocked)) continue;
      if (wanted !== undefined) {
        throw new TsrunError('ESTATE', `the container name "/${name}" is already in use; remove that container or choose another name with --name`);
      }
      if (attempt > 20) throw err;
    }
  }
}

/**
 * Frees a name this container holds. Only its own: a removal that lost a race must not free the
 * name a new container just took (a name is taken only once free, so the check cannot go stale).
 */
export function releaseName(storeRoot: string, name: string, id: string): void {
  const link = join(namesDir(storeRoot), name);
  if (linkTarget(link)?.split('/').pop() !== id) return;
  try {
    unlinkSync(link);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
}

/** How long a container directory with neither container.json nor a `creating` marker may be young. */
const DEBRIS_AGE_MS = 60_000;

/**
 * Whether a container directory is what a killed create left: no container.json, and its
 * maker dead (its `creating` marker names it; without one — killed between mkdir and the
 * marker's write — it is debris once older than a minute).
 */
export function isDebris(paths: ContainerPaths): boolean {
  if (readRecord(paths)) return false;
  const marker = readCreatingMarker(paths);
  if (marker) return !tokenAlive(marker.by);
  try {
    return Date.now() - lstatSync(paths.dir).mtimeMs > DEBRIS_AGE_MS;
  } catch {
    return true; // gone
  }
}

/**
 * Remove a killed create's directory and what it had reserved: its name, its userns block, the
 * anonymous volumes its marker names. The volumes go first: the directory, kept until last, is
 * what tells the next repair there is something left to do. `volumesLocked`: the caller holds
 * the volumes lock.
 */
export async function removeDebris(storeRoot: string, id: string, opts: { volumesLocked?: boolean } = {}): Promise<void> {
  const paths = new ContainerPaths(storeRoot, id);
  const volumes = markedVolumes(paths);
  if (volumes.length > 0) await removeUnusedVolumes(storeRoot, volumes, { locked: opts.volumesLocked ?? false });
  const target = join('..', 'containers', id);
  for (const name of entries(namesDir(storeRoot))) {
    const link = join(namesDir(storeRoot), name);
    if (linkTarget(link) === target) rmSync(link, { force: true });
  }
  releaseUsernsOf(storeRoot, id);
  rmSync(paths.dir, { recursive: true, force: true });
}

/** The anonymous volumes a create's `creating` marker says it makes (none if it has no marker). */
function markedVolumes(paths: ContainerPaths): string[] {
  try {
    const { volumes } = JSON.parse(readFileSync(paths.creating, 'utf8')) as Partial<CreatingMarker>;
    return Array.isArray(volumes) ? volumes.filter((v): v is string => typeof v === 'string') : [];
  } catch {
    return []; // no marker, or half-written: its create died before it made a volume
  }
}

/** A name reserved for a killed create's directory is released (with the directory). True if it was. */
async function releaseDebrisName(storeRoot: string, name: string, volumesLocked: boolean): Promise<boolean> {
  const id = linkTarget(join(namesDir(storeRoot), name))?.split('/').pop();
  if (!id || !/^[0-9a-f]{64}$/.test(id) || !isDebris(new ContainerPaths(storeRoot, id))) return false;
  await removeDebris(storeRoot, id, { volumesLocked });
  releaseName(storeRoot, name, id);
  return true;
}

/** A directory's entries; none when it does not exist. */
export function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return [];
    throw err;
  }
}

/** Where a symlink points; undefined when there is none. */
export function linkTarget(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Make the container's record and directories. With volumes, under the volumes lock until the
 * record exists: a `volume rm` or `volume prune` then either sees this container or ran before it.
 */
export async function createContainer(req: CreateRequest): Promise<ContainerRecord> {
  // As docker: each path of the image's VOLUME no mount of the run covers gets an anonymous
  // volume. Not a build's step containers (as BuildKit): a RUN sees the image's own directory.
  const volumes = req.buildOwner === undefined ? withImageVolumes(req.options, req.image.config.config?.Volumes) : req.options.volumes;
  const withVolumes: CreateRequest = { ...req, options: { ...req.options, volumes } };
  if (!volumes.some((v) => v.volume || v.anonymous)) return createUnlocked(withVolumes, false);
  return withVolumesLock(req.storeRoot, () => createUnlocked(withVolumes, true));
}

/**
 * What `creating` holds while a container is made: who makes it, from which image, and the
 * anonymous volumes it makes (removeDebris removes them if it is killed).
 */
type CreatingMarker = NonNullable<ReturnType<typeof readCreatingMarker>> & { volumes: string[] };

async function createUnlocked(req: CreateRequest, volumesLocked: boolean): Promise<ContainerRecord> {
  const { storeRoot, image } = req;
  // -P is resolved now, against the image's ExposedPorts, so that a later `start` has it too.
  const options: ContainerOptions = { ...req.options, publish: portsToPublish(req.options, image.config), publishAll: false };
  // The flags' healthcheck over the image's, field by field (as docker); a build's step runs none.
  const healthcheck = req.buildOwner === undefined ? mergeHealthcheck(image.config.config?.Healthcheck, req.options.healthcheck) : undefined;
  if (healthcheck) options.healthcheck = healthcheck;
  crashPoint('create:begin');
  const id = newContainerId();
  const paths = new ContainerPaths(storeRoot, id);
  let name: string | undefined;
  // Anonymous volumes: named now, made once the marker names them, so that a killed create's go
  // with its debris. (Made after the record instead, a kill between the two would leave a
  // container whose mounts have no source.)
  options.volumes = options.volumes.map((v) => {
    if (!v.anonymous) return v;
    const volume = newAnonymousName();
    return { ...v, volume, source: volumeData(storeRoot, volume) };
  });
  const anonymous = anonymousVolumesOf(options.volumes);
  try {
    // First the directory and its marker, then what is reserved in its name (the name, a block
    // of ids, volumes): whoever finds a reservation finds its maker's marker, so a create that
    // is still running is never taken for debris. The marker also tells rmi the image has a
    // user, and names the anonymous volumes a killed create's debris removal deletes.
    mkdirSync(join(storeRoot, 'containers'), { recursive: true, mode: 0o700 });
    mkdirSync(paths.dir, { mode: 0o700 });
    writeFileNamed(paths.creating, JSON.stringify({ by: selfToken(), imageId: image.id, volumes: anonymous } satisfies CreatingMarker));
    name = await reserveName(storeRoot, options.name, id, volumesLocked);
    // --userns private: a block of host ids of its own, for its whole life (restarts included).
    if (options.userns?.mode === 'private' && options.userns.uidMap.length === 0) options.userns = allocateUserns(storeRoot, id);
    // Named volumes: made if missing, mounted from the store. Their files are owned as the
    // image's are on disk: a user namespace sees them through the store's idmapped mount.
    options.volumes = options.volumes.map((v) => (v.volume && !v.anonymous ? { ...v, source: volumeData(storeRoot, ensureVolume(storeRoot, v.volume).name) } : v));
    for (const volume of anonymous) makeAnonymousVolume(storeRoot, volume);
    crashPoint('create:dir-made');
    // The other half of rmi's check (ImageStore.removeImage's userOf): the image was found
    // before this container said it uses it; it must still be recorded now. A build's image
    // is its own state, not a recorded image: the build keeps its layers.
    if (req.buildOwner === undefined && !(await imageStillStored(storeRoot, image.id))) {
      throw new TsrunError('ENOIMAGE', `image ${req.imageName} was removed while container ${name} was being created from it`);
    }
    for (const d of ['upper', 'work', 'rootfs']) mkdirSync(join(paths.dir, d), { mode: 0o755 });

    const layersTopFirst = [...image.layers].reverse();
    const layerDirs = layersTopFirst.map((l) => l.dir);
    const lowers = new LowerLayers(layerDirs);
    for (const v of options.volumes) if (v.volume && !v.noCopy) fillFromImage(storeRoot, v.volume, lowers, v.target);
    const user = resolveUser(options.user ?? image.config.config?.User, layerDirs, options.groupAdd);
    const hostname = options.hostname ?? id.slice(0, 12);
    writeFileNamed(paths.hostname, `${hostname}\n`);
    writeHosts(storeRoot, id, recipeFor(hostname, options));
    writeResolvConf(paths, options);

    const rootless = inOwnUserns();
    const spec = createSpec(image.config, options, {
      id,
      rootfs: paths.rootfs,
      user,
      etcFiles: { hostname: paths.hostname, hosts: paths.hosts, resolvConf: paths.resolvConf },
      hostHardLimits: hostHardLimits(),
      canRaiseLimits: hasCapSysResource(),
      hostCapabilities: hostCapabilities(),
      // Rootless: no cgroup of its own, and no cgroup file system it could mount.
      cgroupMounts: rootless ? [] : cgroupMounts(detectCgroups(), !options.privileged),
      rootless,
      devices: containerDevices(options),
    });
    writeJsonAtomic(paths.config, spec);

    // An image without layers still needs one lower dir for overlayfs.
    let lowerDirs = layersTopFirst.map((l) => l.link);
    if (lowerDirs.length === 0) {
      mkdirSync(join(paths.dir, 'empty'));
      lowerDirs = [join('containers', id, 'empty')];
    }
    const record: ContainerRecord = {
      id,
      name,
      created: new Date().toISOString(),
      image: req.imageName,
      imageId: image.id,
      path: spec.process.args[0]!,
      args: spec.process.args.slice(1),
      hostname,
      // Its limits live in the spec (config.json) alone.
      options: withoutResources(options),
      restartPolicy: req.restartPolicy ?? { name: 'no', maximumRetryCount: 0 },
      lowerDirs,
      logConfig: req.logConfig ?? DEFAULT_LOG_CONFIG,
      stopSignal: options.stopSignal ?? image.config.config?.StopSignal ?? 'SIGTERM',
      ...(options.stopTimeout !== undefined && { stopTimeout: options.stopTimeout }),
      labels: { ...(image.config.config?.Labels ?? {}), ...(options.labels ?? {}) },
      ...(req.buildOwner !== undefined && { buildOwner: req.buildOwner }),
    };
    writeJsonAtomic(paths.state, emptyState());
    crashPoint('create:before-record');
    // Last: a directory with container.json is a container; without it, debris of a failed create.
    writeJsonAtomic(paths.record, record);
    rmSync(paths.creating, { force: true });
    return record;
  } catch (err) {
    // Under the volumes lock (createContainer), and named by no record: they are this create's
    // alone. Should that fail too, the error to report is still the first; `volume prune` takes them.
    if (anonymous.length > 0) await removeUnusedVolumes(storeRoot, anonymous, { locked: true }).catch(() => undefined);
    if (name !== undefined) releaseName(storeRoot, name, id);
    releaseUserns(storeRoot, id, options.userns);
    rmSync(paths.dir, { recursive: true, force: true });
    throw err;
  }
}

async function imageStillStored(storeRoot: string, id: string): Promise<boolean> {
  const { ImageStore } = await import('../image/store.js');
  return (await ImageStore.open(storeRoot, { sweep: false })).holds(id as Digest);
}

function withoutResources(options: ContainerOptions): Omit<ContainerOptions, 'resources'> {
  const { resources: _inSpec, ...rest } = options;
  return rest;
}
