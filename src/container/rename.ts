// rename: reserve the new name first (atomic symlink), then record it, then free the old one;
// under the container's lock, so that system check never takes a name being recorded for a
// stale one. Then its network endpoints, so that its peers' /etc/hosts say the new name.
import { rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { releaseName } from './create.js';
import { refreshPeers } from './network.js';
import type { Found } from './lookup.js';
import { validateName } from './names.js';
import { namesDir } from './paths.js';
import { readRecord, writeJsonAtomic } from './record.js';
import { withLock } from '../sys/lock.js';
import { crashPoint } from '../sys/crash.js';

export async function renameContainer(storeRoot: string, found: Found, wanted: string): Promise<void> {
  const name = validateName(wanted);
  await withLock(
    found.paths.lock,
    async () => {
      renameLocked(storeRoot, found, name);
      // On a network (running): its peers know it by its new name, as docker's DNS does at once.
      const { renameEndpoints } = await import('../netns/index.js');
      for (const network of await renameEndpoints(storeRoot, found.record.id, name)) refreshPeers(storeRoot, network, found.record.id);
    },
    { createDir: false },
  );
}

function renameLocked(storeRoot: string, found: Found, name: string): void {
  const record = readRecord(found.paths) ?? found.record;
  if (name === record.name) throw new TsrunError('ESTATE', `renaming a container with the same name as its current name`);
  try {
    symlinkSync(join('..', 'containers', record.id), join(namesDir(storeRoot), name));
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') throw new TsrunError('ESTATE', `the container name "/${name}" is already in use`);
    throw err;
  }
  crashPoint('rename:reserved');
  writeJsonAtomic(found.paths.record, { ...record, name });
  releaseName(storeRoot, record.name, record.id);
  // The exec plan names its process after the container (exec.ts): the next exec writes it anew.
  rmSync(found.paths.execPlan, { force: true });
}
