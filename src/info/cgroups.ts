// The cgroup part of `tsrun info`: which layout (detectCgroups), and which controllers each
// hierarchy offers. On v1 a hierarchy *is* its controllers (the mount options say which); on
// v2 one hierarchy lists what it offers in cgroup.controllers and what it hands down to its
// children in cgroup.subtree_control — a controller missing from the first cannot be used at
// all, one missing from the second is enabled by tsrun when it creates its parent cgroup.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CGROUP_PARENT, detectCgroups, type CgroupLayout } from '../cgroups/index.js';
import { compareStrings } from '../sys/order.js';

export interface CgroupHierarchy {
  /** 'v1': one controller (or a co-mounted few) per mount; 'v2': the unified hierarchy. */
  kind: 'v1' | 'v2';
  path: string;
  /** v1: the controllers mounted here; v2: cgroup.controllers of the mount's root. */
  controllers: string[];
  /** v2 only: cgroup.subtree_control of the root (what children get). */
  subtreeControl?: string[];
}

export interface CgroupInfo {
  /** docker's CgroupVersion: "1" (v1 or hybrid: limits go to v1) or "2". */
  version: '1' | '2';
  mode: CgroupLayout['mode'];
  /** tsrun writes the cgroup files itself, like docker's "cgroupfs" driver (not systemd's). */
  driver: 'cgroupfs';
  mountRoot: string;
  /** --cgroup-parent's default here (env TSRUN_CGROUP_PARENT). */
  parent: string;
  hierarchies: CgroupHierarchy[];
  warnings: string[];
}

/** The controllers tsrun's resource flags need, by the flag that needs them. */
const NEEDED: Array<[controller: string, flags: string]> = [
  ['memory', '-m/--memory'],
  ['pids', '--pids-limit'],
  ['cpu', '--cpus/--cpu-shares'],
  ['cpuset', '--cpuset-cpus'],
];

type Read = (path: string) => string | undefined;

const readFile: Read = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

const words = (text: string | undefined): string[] => (text ?? '').split(/\s+/).filter(Boolean);

/** Describes the layout; `read` and `layout` are seams for unit tests. */
export function describeCgroups(opts: { layout?: CgroupLayout; read?: Read; env?: NodeJS.ProcessEnv } = {}): CgroupInfo {
  const layout = opts.layout ?? detectCgroups();
  const read = opts.read ?? readFile;
  const env = opts.env ?? process.env;
  const hierarchies: CgroupHierarchy[] = [];

  // v1: group controllers by mount point (cpu,cpuacct are often one hierarchy).
  const byMount = new Map<string, string[]>();
  for (const [controller, path] of Object.entries(layout.v1)) byMount.set(path, [...(byMount.get(path) ?? []), controller]);
  for (const [path, controllers] of [...byMount].sort(([a], [b]) => compareStrings(a, b))) {
    hierarchies.push({ kind: 'v1', path, controllers: controllers.sort() });
  }
  if (layout.unified !== undefined) {
    hierarchies.push({
      kind: 'v2',
      path: layout.unified,
      controllers: words(read(join(layout.unified, 'cgroup.controllers'))),
      subtreeControl: words(read(join(layout.unified, 'cgroup.subtree_control'))),
    });
  }

  const warnings: string[] = [];
  const usable = new Set(layout.mode === 'v2' ? (hierarchies.at(-1)?.controllers ?? []) : Object.keys(layout.v1));
  for (const [controller, flags] of NEEDED) {
    if (!usable.has(controller)) warnings.push(`the ${controller} controller is not available: ${flags} cannot be enforced`);
  }
  if (layout.mode === 'hybrid') {
    warnings.push(`cgroup v1/v2 hybrid: limits are set in the v1 hierarchies; ${layout.unified} is only joined`);
  }

  return {
    version: layout.mode === 'v2' ? '2' : '1',
    mode: layout.mode,
    driver: 'cgroupfs',
    mountRoot: layout.mountRoot,
    parent: env.TSRUN_CGROUP_PARENT ?? DEFAULT_CGROUP_PARENT,
    hierarchies,
    warnings,
  };
}
