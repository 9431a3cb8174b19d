// Which repositories a blob came from, so `push` can ask a registry to mount a layer from a
// repository it already holds instead of uploading it again (docker's v2metadata does the same).
// One small file per blob under <store>/registry-sources/; it is only a hint, so a lost update
// (two pulls at once) costs an upload, never correctness.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../oci/types.js';

const MAX_SOURCES = 10;

function file(dir: string, digest: Digest): string {
  return join(dir, digest.replace(':', '-'));
}

/** "registry/repository" names the blob is known to be in, most recent first. */
export async function blobSources(dir: string, digest: Digest): Promise<string[]> {
  try {
    const list: unknown = JSON.parse(await readFile(file(dir, digest), 'utf8'));
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export async function addBlobSource(dir: string, digest: Digest, repository: string): Promise<void> {
  const list = await blobSources(dir, digest);
  if (list[0] === repository) return;
  const next = [repository, ...list.filter((x) => x !== repository)].slice(0, MAX_SOURCES);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file(dir, digest)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(next));
  await rename(tmp, file(dir, digest));
}
