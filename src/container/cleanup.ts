// After a container's process is gone: read whether the OOM killer ended it, kill anything left
// in its cgroup, remove the cgroup, take it off its network, and with --rm remove it entirely
// (its anonymous volumes too, as docker's --rm).
// Idempotent, and safe to run from several places at once (the foreground CLI, the monitor's
// exit command, the next tsrun after a crash): it holds the container's lock.
import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { detectCgroups, openDriver } from '../cgroups/index.js';
import type { ExitStatus } from '../namespaces/helper.js';
import { withLock } from '../sys/lock.js';
import { releaseName } from './create.js';
import { refreshPeers, usesBridge } from './network.js';
import { crashPoint } from '../sys/crash.js';
import { ContainerPaths } from './paths.js';
import { listIds, readRecord, readState, updateState, type ContainerState } from './record.js';
import { errnoOf } from '../errors.js';
import { observe } from './status.js';
import { releaseUserns } from '../namespaces/userns.js';
import { anonymousVolumesOf, removeUnusedVolumes } from './volumes.js';

export interface CleanupOptions {
  /** The exit as the monitor reported it to an attached tsrun. */
  exit?: ExitStatus;
  /** The caller already holds the container's lock. */
  locked?: boolean;
  /** Remove a --rm container (default true). */
  autoRemove?: boolean;
}

export async function cleanupContainer(storeRoot: string, id: string, opts: CleanupOptions = {}): Promise<ContainerState> {
  const paths = new ContainerPaths(storeRoot, id);
  const work = async (): Promise<ContainerState> => {
    const record = readRecord(paths);
    const seen = observe(paths);
    if (!record || seen.starting || seen.status === 'running' || seen.status === 'paused' || seen.status === 'restarting') return seen.state;
    let state = seen.state;
    if (!state.cleanedUp) {
      const driver = openDriver(detectCgroups());
      const cgroup = driver.open(record.options.cgroupParent, id);
      const oomKilled = cgroup?.oomKilled() ?? false;
      if (cgroup) {
        // A monitor killed with -9 leaves its container behind: remove() ends every process of
        // it (killAll) before the cgroup goes, and before anything else is released.
        cgroup.remove();
      }
      // Also when the container's own cgroup was never made: a start killed between making the
      // parent and the child leaves the parent (removed only if empty).
      driver.removeParent(record.options.cgroupParent);
      crashPoint('cleanup:cgroup-removed');
      // Recorded, or maybe made by a start that was killed before it could record it: detach()
      // finds an endpoint, a veth and a namespace by the container's ID alone.
      if (state.network || usesBridge(record.options.network)) {
        const { detach } = await import('../netns/index.js');
        // Its processes are gone (the cgroup is empty, or was never made): the kernel may
        // remove the veth with the namespace, ~20 ms sooner for us.
        const left = await detach(storeRoot, id, { processesGone: true });
        // Every network it was on (those `network connect` added too) forgets its name.
        for (const net of new Set([...(state.network ? [state.network.name] : []), ...left])) refreshPeers(storeRoot, net, id);
        crashPoint('cleanup:network-detached');
      }
      state = updateState(paths, {
        cleanedUp: true,
        startingBy: null,
        oomKilled,
        exitCode: opts.exit?.code ?? seen.exitCode,
        // A killed start's container keeps its last run's end (its monitor never ran).
        finishedAt: seen.monitor?.finishedAt ?? state.finishedAt ?? new Date().toISOString(),
      });
    }
    if (record.options.remove && opts.autoRemove !== false) {
      removeFiles(storeRoot, id, record.name);
      await removeUnusedVolumes(storeRoot, anonymousVolumesOf(record.options.volumes));
    }
    return state;
  };
  if (opts.locked) return work();
  try {
    return await withLock(paths.lock, work, { createDir: false });
  } catch (err) {
    // Removed meanwhile (rm -f, or the other cleanup of a --rm container): nothing left to do.
    if (errnoOf(err) === 'ENOENT') return readState(paths);
    throw err;
  }
}

/**
 * Delete a stopped container's files and free its name. The directory is first renamed out of
 * the way (atomically): from then on no other tsrun can find it, open its lock or write into
 * it while it is being deleted.
 */
export function removeFiles(storeRoot: string, id: string, name: string): void {
  const paths = new ContainerPaths(storeRoot, id);
  const dir = paths.dir;
  const userns = readRecord(paths)?.options.userns;
  const trash = join(storeRoot, 'containers', `.removing-${id}-${process.pid}`);
  try {
    renameSync(dir, trash);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
  crashPoint('remove:renamed');
  releaseName(storeRoot, name, id);
  releaseUserns(storeRoot, id, userns);
  rmSync(trash, { recursive: true, force: true });
}

/**
 * Release what dead monitors and killed starts left behind (kill -9, reboot). Run by commands
 * that list or start; `ids` limits it to those containers (ps: the ones its listing found
 * orphaned, rather than observing every container twice). One container that cannot be
 * released now (a full disk) is passed over with a warning: the command that asked must still
 * do its own work.
 */
export async function reconcile(storeRoot: string, warn: (id: string, err: unknown) => void = () => {}, ids?: string[]): Promise<string[]> {
  const cleaned: string[] = [];
  for (const id of ids ?? listIds(storeRoot)) {
    try {
      if (!observe(new ContainerPaths(storeRoot, id)).orphaned) continue;
      await cleanupContainer(storeRoot, id);
      cleaned.push(id);
    } catch (err) {
      warn(id, err);
    }
  }
  return cleaned;
}
