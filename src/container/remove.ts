// rm and container prune: a running container only with -f (killed first), as docker; with -v
// its anonymous volumes too.
import { TsrunError, errnoOf } from '../errors.js';
import { withLock } from '../sys/lock.js';
import { cleanupContainer, removeFiles } from './cleanup.js';
import type { Found } from './lookup.js';
import { ContainerPaths } from './paths.js';
import { listIds, readRecord } from './record.js';
import { killContainer, requestStop, waitNotRunning } from './signals.js';
import { can, observe } from './status.js';
import { anonymousVolumesOf, removeUnusedVolumes } from './volumes.js';

/** `volumes` (docker's rm -v): its anonymous volumes go too, unless another container names one; named volumes stay. */
export async function removeContainer(storeRoot: string, found: Found, force: boolean, opts: { volumes?: boolean } = {}): Promise<void> {
  const seen = observe(found.paths);
  if (!can.remove(seen.status)) {
    if (!force) {
      throw new TsrunError(
        'ESTATE',
        `cannot remove container ${found.record.name}: it is ${seen.status}; stop it first (tsrun stop ${found.record.name}) or force the removal with rm -f`,
      );
    }
    // A restart policy must not bring it back between the kill and the removal.
    requestStop(found);
    try {
      await killContainer(found, 'SIGKILL');
    } catch (err) {
      // It ended on its own meanwhile: removed all the same, as docker's rm -f does.
      if (!can.remove(observe(found.paths).status)) throw err;
    }
    if (!(await waitNotRunning(found, 10_000))) {
      throw new TsrunError('ESTATE', `container ${found.record.name} did not stop after SIGKILL`);
    }
  }
  await cleanupContainer(storeRoot, found.record.id, { autoRemove: false });
  await withLock(found.paths.lock, () => {
    // Removed meanwhile (`rm a a`, or a name and an ID of one container, side by side).
    if (!readRecord(found.paths)) throw new TsrunError('ENOCONTAINER', `no such container: ${found.record.name}`);
    // Asked again under the lock: a start (run's takes no lock) may have begun meanwhile.
    const now = observe(found.paths);
    if (now.starting || !can.remove(now.status)) {
      throw new TsrunError('ESTATE', `cannot remove container ${found.record.name}: it is ${now.starting ? 'being started' : now.status}; try again`);
    }
    removeFiles(storeRoot, found.record.id, found.record.name);
  }, { createDir: false }).catch((err: unknown) => {
    // Its directory, lock and all, went with another removal.
    if (errnoOf(err) === 'ENOENT') throw new TsrunError('ENOCONTAINER', `no such container: ${found.record.name}`);
    throw err;
  });
  // Once no record names them (a kill before this leaves unused ones, for `volume prune`).
  if (opts.volumes) await removeUnusedVolumes(storeRoot, anonymousVolumesOf(found.record.options.volumes));
}

/** Remove every stopped container; the IDs removed. */
export async function pruneContainers(storeRoot: string): Promise<string[]> {
  const removed: string[] = [];
  for (const id of listIds(storeRoot)) {
    const paths = new ContainerPaths(storeRoot, id);
    const record = readRecord(paths);
    if (!record) continue;
    const status = observe(paths).status;
    if (status !== 'exited' && status !== 'created' && status !== 'dead') continue;
    await removeContainer(storeRoot, { paths, record }, false);
    removed.push(id);
  }
  return removed;
}
