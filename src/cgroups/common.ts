// What both drivers need: where a container's cgroup lives, which controllers a set of limits
// needs, killing everything in a cgroup, and removing directories the kernel is still letting go.
import { rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { TsrunError, errnoOf } from '../errors.js';
import { blkio } from './blkio.js';
import type { Controller } from './controller.js';
import { cpu } from './cpu.js';
import { cpuset } from './cpuset.js';
import { exists, makeDir, readPids, sleepMs, waitUntil, writeValue } from './fsio.js';
import { memory } from './memory.js';
import { pids } from './pids.js';
import type { Resources } from './types.js';

/** The controllers that take limits, in the order limits are applied. */
export const CONTROLLERS: Controller[] = [cpuset, cpu, memory, pids, blkio];

/** Each controller `r` asks something of → the docker flags that ask it. */
export function needed(r: Resources): Map<Controller, string[]> {
  const out = new Map<Controller, string[]>();
  for (const c of CONTROLLERS) {
    const flags = c.flags(r);
    if (flags.length > 0) out.set(c, flags);
  }
  return out;
}

/** "tsrun", "/tsrun", "a/b/" → path components; refuses anything that could leave the hierarchy. */
export function parentParts(parent: string): string[] {
  const parts = parent.split('/').filter((p) => p !== '');
  if (parts.length === 0 || parts.some((p) => p === '.' || p === '..')) {
    throw new TsrunError('EINVAL_FLAG', `invalid argument "${parent}" for "--cgroup-parent" flag: use a path like tsrun or /ci/jobs, without . or .. and not the root`);
  }
  return parts;
}

export function checkId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) throw new TsrunError('EINTERNAL', `"${id}" is not a valid cgroup name for a container`);
}

/** mkdir that tolerates an existing directory; returns whether this call made it. */
export function mkdirOnce(dir: string): boolean {
  try {
    makeDir(dir); // observed: --trace shows it
    return true;
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') return false;
    throw new TsrunError('EINTERNAL', `create cgroup ${dir}: ${errnoOf(err) ?? String(err)}`, { cause: err });
  }
}

/** Make the container's own directory; an existing one is reused only while it is empty. */
export function mkdirLeaf(dir: string): boolean {
  const made = mkdirOnce(dir);
  if (!made && readPids(dir).length > 0) {
    throw new TsrunError('EINTERNAL', `create cgroup ${dir}: it already exists and has processes in it`);
  }
  return made;
}

/**
 * rmdir on cgroupfs removes a cgroup (its interface files are not real files). The kernel says
 * EBUSY while tasks are still exiting, so retry for a moment.
 */
export function rmdirRetry(dir: string, timeoutMs = 3000): void {
  let last: unknown;
  const gone = waitUntil(() => {
    try {
      rmdirSync(dir);
      return true;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return true;
      if (errnoOf(err) !== 'EBUSY') throw new TsrunError('EINTERNAL', `remove cgroup ${dir}: ${errnoOf(err) ?? String(err)}`, { cause: err });
      last = err;
      return false;
    }
  }, timeoutMs, 10);
  if (!gone) throw new TsrunError('EINTERNAL', `remove cgroup ${dir}: still busy after ${timeoutMs / 1000} s`, { cause: last });
}

/** rmdir if empty; true when the directory no longer exists. */
export function rmdirIfEmpty(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    return errnoOf(err) === 'ENOENT';
  }
}

export interface KillTarget {
  /** Every directory the container's tasks may be in. */
  dirs: string[];
  /** A cgroup2 directory with cgroup.kill (Linux ≥ 5.14), if there is one. */
  killDir?: string;
  freeze?: () => void;
  thaw?: () => void;
}

export function allPids(dirs: string[]): number[] {
  return [...new Set(dirs.flatMap(readPids))];
}

/**
 * SIGKILL every task. cgroup.kill does it atomically in the kernel. Without it, tasks could
 * fork faster than we read cgroup.procs, so freeze first (as runc does), signal, then thaw:
 * SIGKILL is delivered on thaw. Then wait until the cgroup is empty.
 */
export function killAll(t: KillTarget, timeoutMs = 5000): void {
  if (t.killDir && exists(t.killDir, 'cgroup.kill')) writeValue(t.killDir, 'cgroup.kill', 1);
  const empty = waitUntil(() => {
    const pids = allPids(t.dirs).filter((p) => p !== process.pid);
    if (pids.length === 0) return true;
    try {
      t.freeze?.();
    } catch {
      // Stuck FREEZING: signal anyway.
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // ESRCH: it exited between the read and the kill.
      }
    }
    try {
      t.thaw?.();
    } catch {
      // The next round retries; the timeout below reports what is left.
    }
    sleepMs(10);
    return false;
  }, timeoutMs, 0);
  if (!empty) {
    throw new TsrunError('EINTERNAL', `kill the tasks of ${t.dirs.join(', ')}: still running after ${timeoutMs / 1000} s: ${allPids(t.dirs).join(' ')}`);
  }
}

export const childDir = (root: string, parts: string[], id?: string) => join(root, ...parts, ...(id === undefined ? [] : [id]));
