// What /proc says of a process.
import { readFileSync } from 'node:fs';

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
