// The shifted layer copies (namespaces/userns-files.ts) that no container needs any more.
import { mapKey, pruneShiftedLayers } from '../namespaces/userns-files.js';
import { ContainerPaths } from './paths.js';
import { listIds, readRecord } from './record.js';

export function pruneUnusedShiftedLayers(storeRoot: string): number {
  const inUse = new Set<string>();
  for (const id of listIds(storeRoot)) {
    const userns = readRecord(new ContainerPaths(storeRoot, id))?.options.userns;
    if (userns) inUse.add(mapKey(userns));
  }
  return pruneShiftedLayers(storeRoot, inUse);
}
