// rename: reserve the new name first (atomic symlink), then record it, then free the old one.
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { releaseName } from './create.js';
import type { Found } from './lookup.js';
import { validateName } from './names.js';
import { namesDir } from './paths.js';
import { writeJsonAtomic } from './record.js';

export function renameContainer(storeRoot: string, found: Found, wanted: string): void {
  const name = validateName(wanted);
  if (name === found.record.name) throw new TsrunError('ESTATE', `renaming a container with the same name as its current name`);
  try {
    symlinkSync(join('..', 'containers', found.record.id), join(namesDir(storeRoot), name));
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') throw new TsrunError('ESTATE', `the container name "/${name}" is already in use`);
    throw err;
  }
  writeJsonAtomic(found.paths.record, { ...found.record, name });
  releaseName(storeRoot, found.record.name);
}
