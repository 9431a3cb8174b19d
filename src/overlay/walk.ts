// Walking a tree someone else may be changing (a container's upper dir or root) without ever
// following a symlink: one directory fd at a time, each name looked up through
// `/proc/self/fd/<dirfd>/<name>` with O_NOFOLLOW, so the kernel jumps to the exact directory the
// fd holds and resolves one name in it. Light: node:fs (libc only for a constant).
import * as fs from 'node:fs';
import { errnoOf } from '../errors.js';
import { O_CLOEXEC } from '../sys/libc.js';

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

/** lstat, or undefined where nothing is (ENOENT, or a non-directory on the way). */
export function lstatOrUndefined(path: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(path);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** The path the kernel resolves as `name` in the directory `dirFd` holds, never following `name`. */
export function fdPath(dirFd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dirFd}` : `/proc/self/fd/${dirFd}/${name}`;
}

/** Opens a directory for reading, refusing a symlink in its place (ELOOP). */
export function openDir(path: string): number {
  return fs.openSync(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

export interface WalkEntry {
  /** Relative to the walk's root, no leading slash. */
  rel: string;
  /** fdPath(parent, name): safe for lstat, readlink, lchown, and opens with O_NOFOLLOW. */
  path: string;
  st: fs.Stats;
  /**
   * `path` is `/proc/self/fd/N` of an O_PATH fd that already followed a symlink (`cp -L`): the
   * magic link names that very inode, so it is opened without O_NOFOLLOW (which would refuse it).
   */
  followed?: boolean;
}

/**
 * Visits the tree under the directory fd in sorted order, parents before children; `visit`
 * returns whether to descend into a directory. Entries that vanish meanwhile are skipped.
 */
export async function walk(dirFd: number, rel: string, visit: (e: WalkEntry) => Promise<boolean> | boolean): Promise<void> {
  const names = fs.readdirSync(fdPath(dirFd)).sort();
  for (const name of names) {
    const path = fdPath(dirFd, name);
    const st = lstatOrUndefined(path);
    if (!st) continue;
    const childRel = rel === '' ? name : `${rel}/${name}`;
    if (!(await visit({ rel: childRel, path, st })) || !st.isDirectory()) continue;
    let fd: number;
    try {
      fd = openDir(path);
    } catch (err) {
      if (['ENOENT', 'ELOOP', 'ENOTDIR'].includes(errnoOf(err) ?? '')) continue;
      throw err;
    }
    try {
      await walk(fd, childRel, visit);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** glibc's major()/minor() for a dev_t. */
export function devNumbers(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  return {
    major: Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn)),
    minor: Number((d & 0xffn) | ((d >> 12n) & ~0xffn)),
  };
}
