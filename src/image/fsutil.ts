// Small file-system building blocks the store relies on: temp names that say who owns
// them, atomic replacement, and a lock that dies with its holder.
import { randomBytes } from '../sys/random.js';
// fs.promises rather than node:fs/promises: loaded on first use, not by every `run` (~2 ms).
import { readFileSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { errnoOf } from '../errors.js';

/** `<prefix><pid>-<random>`: the pid lets a later process see that the owner is gone. */
export function tempName(prefix = ''): string {
  return `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** The pid in a name made by tempName, if any. */
export function ownerPid(name: string, prefix = ''): number | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const m = /^(\d+)-/.exec(name.slice(prefix.length));
  return m ? Number(m[1]) : undefined;
}

/** Write a file so readers see the old or the new content, never a torn one. */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${tempName()}`);
  try {
    const fh = await fs.open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * A small JSON file (layer.json and the like), or undefined when it is missing. Read with a
 * synchronous call on purpose: from the page cache that is faster than a round trip through
 * libuv's thread pool, and a command that never uses the pool (`run`) never pays the ~5 ms of
 * starting its threads.
 */
export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw err;
  }
}

export { withLock } from '../sys/lock.js';

/**
 * `rm -rf` that also works without root on trees with read-only directories (an image's
 * `dr-xr-xr-x` dirs): on EACCES/EPERM it makes directories writable and tries again.
 */
export async function removeTree(p: string): Promise<void> {
  try {
    await fs.rm(p, { recursive: true, force: true });
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'EACCES' && code !== 'EPERM' && code !== 'ENOTEMPTY') throw err;
    await makeWritable(p);
    await fs.rm(p, { recursive: true, force: true });
  }
}

async function makeWritable(p: string): Promise<void> {
  const st = await fs.lstat(p).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await fs.chmod(p, 0o700);
  for (const name of await fs.readdir(p)) await makeWritable(path.join(p, name));
}
