// What a container engine most often leaves behind. Tests and the global teardown call this.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Mounts that mention `marker` (a test's store root), tsrun processes and cgroups; empty when clean. */
export function findLeaks(marker = 'tsrun'): string[] {
  const leaks: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line.includes(marker)) leaks.push(`mount: ${line}`);
  }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let comm = '';
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm === 'tsrun-monitor' || comm === 'tsrun-init' || comm === 'tsrun-helper') leaks.push(`process ${pid}: ${comm}`);
  }
  try {
    const found = execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '3', '-type', 'd', '-name', 'tsrun*'], { encoding: 'utf8' });
    for (const d of found.split('\n').filter(Boolean)) leaks.push(`cgroup: ${d}`);
  } catch {
    // no cgroup fs
  }
  return leaks;
}
