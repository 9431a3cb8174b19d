// What a container engine most often leaves behind. Tests and the global teardown call this.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Mounts that mention `marker` (a test's store root); tsrun processes, cgroups, veths, network
 * namespaces and per-container firewall rules anywhere. Empty when clean.
 */
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
    if (comm !== 'tsrun-monitor' && comm !== 'tsrun-init' && comm !== 'tsrun-helper') continue;
    // A zombie holds nothing; an orphan becomes one wherever the host's init is slow to reap.
    let state: string | undefined;
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    } catch {
      continue; // gone meanwhile
    }
    if (state !== 'Z') leaks.push(`process ${pid}: ${comm}`);
  }
  try {
    const found = execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '3', '-type', 'd', '-name', 'tsrun*'], { encoding: 'utf8' });
    for (const d of found.split('\n').filter(Boolean)) leaks.push(`cgroup: ${d}`);
  } catch {
    // no cgroup fs
  }
  const run = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  // A container's network: its veth, its named netns, its per-container firewall rules.
  for (const line of run('ip', ['-o', 'link', 'show', 'type', 'veth']).split('\n').filter(Boolean)) leaks.push(`veth: ${line.slice(0, 80)}`);
  for (const ns of run('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith('tsrun-'))) leaks.push(`netns: ${ns}`);
  for (const rule of run('iptables-save', []).split('\n').filter((l) => /tsrun:[^: "]+:[0-9a-f]{12}/.test(l))) leaks.push(`firewall rule: ${rule}`);
  return leaks;
}
