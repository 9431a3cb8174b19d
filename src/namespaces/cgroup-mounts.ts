// What the container sees at /sys/fs/cgroup. Inside its cgroup namespace each hierarchy's root
// is the container's own cgroup, so `cat /sys/fs/cgroup/pids.max` (v2) or
// `cat /sys/fs/cgroup/pids/pids.max` (v1) shows the container's limits. Read-only, as docker.
import { basename } from 'node:path';
import type { CgroupLayout } from '../cgroups/types.js';
import type { OciMount } from './spec.js';

const RO = ['nosuid', 'noexec', 'nodev', 'ro'];

export function cgroupMounts(layout: CgroupLayout, readonly = true): OciMount[] {
  const flags = readonly ? RO : RO.filter((o) => o !== 'ro');
  if (layout.mode === 'v2') return [{ destination: '/sys/fs/cgroup', type: 'cgroup2', source: 'cgroup', options: flags }];
  // v1: a tmpfs holding one mount per hierarchy, named as on the host (cpu,cpuacct co-mounted or not).
  const hierarchies = new Map<string, string[]>();
  for (const [controller, mountpoint] of Object.entries(layout.v1)) {
    hierarchies.set(mountpoint, [...(hierarchies.get(mountpoint) ?? []), controller]);
  }
  const mounts: OciMount[] = [
    { destination: '/sys/fs/cgroup', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'nodev', 'mode=755'] },
  ];
  for (const [mountpoint, controllers] of hierarchies) {
    mounts.push({ destination: `/sys/fs/cgroup/${basename(mountpoint)}`, type: 'cgroup', source: 'cgroup', options: [...flags, ...controllers] });
  }
  if (layout.unified) {
    mounts.push({ destination: `/sys/fs/cgroup/${basename(layout.unified)}`, type: 'cgroup2', source: 'cgroup', options: flags });
  }
  return mounts;
}
