// What /proc says of a process.
import { readFileSync } from 'node:fs';
import { errnoOf } from '../errors.js';

/**
 * Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot; undefined
 * when there is no such live process (a zombie, which an orphaned monitor becomes where
 * nobody reaps it, is dead too).
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

/**
 * This process as `PID@START-TIME`: what a store file names as the process doing something
 * (creating or starting a container, a build). A pid alone is reused; with its start time it
 * names one process for the whole boot.
 */
export function selfToken(): string {
  return `${process.pid}@${processStartTime(process.pid) ?? '?'}`;
}

/** Whether the process a selfToken() names still runs (false for anything malformed). */
export function tokenAlive(token: string | undefined): boolean {
  const m = /^(\d+)@(\d+)$/.exec(token ?? '');
  return m !== null && processStartTime(Number(m[1])) === m[2];
}

/**
 * Whether the process a temporary file or directory is named after (`.tmp-<pid>…`) is gone:
 * neither this one nor any living one. Then what it left half-made is debris.
 */
export function ownerGone(pid: number): boolean {
  return pid > 0 && pid !== process.pid && !pidAlive(pid);
}

/** Whether a process `pid` exists, anyone's (EPERM: alive, but not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoOf(err) === 'EPERM';
  }
}
