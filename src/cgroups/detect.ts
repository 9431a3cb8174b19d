// Which cgroup layout is mounted: pure v2, v1, or the hybrid many distributions shipped for years
// (v1 controllers, plus a controller-less cgroup2 at /sys/fs/cgroup/unified for systemd). crun
// refuses the hybrid; tsrun uses its v1 hierarchies for limits and joins the cgroup2 one too.
//
// The probe reads /proc/self/mountinfo: its fs type column is what statfs(2) would report as the
// magic (cgroup2 = CGROUP2_SUPER_MAGIC, cgroup = CGROUP_SUPER_MAGIC), and its super options also
// say which v1 controllers each hierarchy carries, which statfs cannot.
import { readFileSync } from 'node:fs';
import { TsrunError } from '../errors.js';
import type { CgroupLayout } from './types.js';

/** The v1 subsystems tsrun knows; `name=systemd` and mount flags are not controllers. */
const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio',
  'blkio', 'perf_event', 'hugetlb', 'pids', 'rdma', 'misc',
]);

interface Mount {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (sep < 6 || fields.length < sep + 4) continue;
    mounts.push({
      mountPoint: unescape(fields[4] ?? ''),
      fsType: fields[sep + 1] ?? '',
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return mounts;
}

let hostLayout: CgroupLayout | undefined;

/**
 * Where the cgroup hierarchies are. The host's own (no opts) is read from /proc/self/mountinfo
 * once per process: `stats` and `ps` ask for every container, and that file grows with them
 * (a bind mount per container's network namespace).
 */
export function detectCgroups(opts: { mountRoot?: string; mountinfo?: string } = {}): CgroupLayout {
  if (opts.mountRoot === undefined && opts.mountinfo === undefined) return (hostLayout ??= detectFrom({}));
  return detectFrom(opts);
}

function detectFrom(opts: { mountRoot?: string; mountinfo?: string }): CgroupLayout {
  const mountRoot = (opts.mountRoot ?? '/sys/fs/cgroup').replace(/\/+$/, '');
  const mounts = parseMountinfo(opts.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8'));
  const under = (m: Mount) => m.mountPoint === mountRoot || m.mountPoint.startsWith(`${mountRoot}/`);

  // Later mounts on the same point hide earlier ones, so the last one wins.
  const atRoot = mounts.filter((m) => m.mountPoint === mountRoot).at(-1);
  if (atRoot?.fsType === 'cgroup2') return { mode: 'v2', mountRoot, v1: {}, unified: mountRoot };

  const v1: Record<string, string> = {};
  let unified: string | undefined;
  for (const m of mounts.filter(under)) {
    if (m.fsType === 'cgroup2') unified ??= m.mountPoint;
    if (m.fsType !== 'cgroup') continue;
    // A co-mounted hierarchy (cpu,cpuacct) serves both names from one directory.
    for (const c of m.superOptions) if (V1_CONTROLLERS.has(c)) v1[c] ??= m.mountPoint;
  }

  if (Object.keys(v1).length > 0) {
    return unified === undefined ? { mode: 'v1', mountRoot, v1 } : { mode: 'hybrid', mountRoot, v1, unified };
  }
  // Only a cgroup2 mount (no v1 controllers anywhere): it is the whole story.
  if (unified !== undefined) return { mode: 'v2', mountRoot: unified, v1: {}, unified };
  throw new TsrunError(
    'EKERNEL',
    `no cgroup filesystem is mounted at ${mountRoot} (neither cgroup2 nor v1 controllers in /proc/self/mountinfo)`,
  );
}
