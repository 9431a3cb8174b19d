// A build's step containers carry who made them (ContainerRecord.buildOwner), so that a build
// killed with -9 does not leave them for ever: the next build removes those whose build is gone.
import { ContainerPaths } from '../container/paths.js';
import { listIds, readRecord } from '../container/record.js';
import { removeContainer } from '../container/remove.js';
import { selfToken, tokenAlive } from '../sys/proc.js';

/** Which tsrun process makes a build's containers (`PID@START-TIME`: a PID alone is reused). */
export const builderId = selfToken;

/**
 * Containers of builds that were killed (kill -9 leaves the step's container behind, running
 * or not): removed, as nothing else will ever use them.
 */
export async function removeAbandoned(root: string): Promise<void> {
  for (const id of listIds(root)) {
    const paths = new ContainerPaths(root, id);
    const record = readRecord(paths);
    const owner = record?.buildOwner;
    if (!record || owner === undefined) continue;
    if (tokenAlive(owner)) continue; // that build still runs
    await removeContainer(root, { paths, record }, true).catch(() => {});
  }
}

