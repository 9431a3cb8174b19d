// Find a container by name, full ID or any unique ID prefix, as docker does.
import { readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { errnoOf, TsrunError } from '../errors.js';
import { ContainerPaths, namesDir } from './paths.js';
import { listIds, readRecord, type ContainerRecord } from './record.js';

export interface Found {
  paths: ContainerPaths;
  record: ContainerRecord;
}

export function findContainer(storeRoot: string, ref: string): Found {
  const input = ref.startsWith('/') ? ref.slice(1) : ref;
  let id: string | undefined;
  try {
    id = basename(readlinkSync(join(namesDir(storeRoot), input)));
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'EINVAL') throw err;
  }
  if (id === undefined && /^[0-9a-f]{1,64}$/.test(input)) {
    const matches = listIds(storeRoot).filter((c) => c.startsWith(input));
    if (matches.length > 1) {
      const names = matches.map((m) => `${m.slice(0, 12)} (${readRecord(new ContainerPaths(storeRoot, m))?.name ?? '?'})`);
      throw new TsrunError('EAMBIGUOUS', `multiple containers match the ID prefix "${input}": ${names.join(', ')}; give more digits`);
    }
    id = matches[0];
  }
  const paths = id === undefined ? undefined : new ContainerPaths(storeRoot, id);
  const record = paths && readRecord(paths);
  if (!paths || !record) throw new TsrunError('ENOCONTAINER', `no such container: ${ref}`);
  return { paths, record };
}
