// tsrun's cgroups: probe the layout, parse docker's resource flags, and drive v1 or v2.
//
//   const layout = detectCgroups();                 // 'v2' | 'hybrid' | 'v1'
//   const resources = parseResources(flags);         // validated, OCI linux.resources shape
//   const cg = openDriver(layout).create('tsrun', id, resources);
//   // the helper writes the container's pid to cg.procsFiles before it runs anything
//   ... cg.oomKilled(); cg.remove();
import { detectCgroups } from './detect.js';
import { TsrunError } from '../errors.js';
import type { CgroupDriver, CgroupLayout } from './types.js';
import { V1Driver } from './v1.js';
import { V2Driver } from './v2.js';

export { detectCgroups } from './detect.js';
export { parseResources, parseSize, parseCpuList, realHost, MIN_MEMORY, type HostInfo, type ResourceFlags } from './flags.js';
export type { CgroupDriver, CgroupHandle, CgroupLayout, CgroupStats, Resources, ThrottleDevice } from './types.js';
export { setCgroupWriteObserver, type WriteObserver } from './fsio.js';
export { V1Driver } from './v1.js';
export { V2Driver } from './v2.js';

/** The parent tsrun uses when the user gives no --cgroup-parent. */
export const DEFAULT_CGROUP_PARENT = 'tsrun';

/** The driver for a layout: v2 for pure cgroup2, v1 (with the cgroup2 mount joined) otherwise. */
export function openDriver(layout: CgroupLayout): CgroupDriver {
  if (layout.mode === 'v2') {
    if (!layout.unified) throw new TsrunError('EINTERNAL', 'a cgroup v2 layout without its mount point');
    return new V2Driver(layout.unified);
  }
  return new V1Driver(layout);
}

/** detectCgroups + openDriver, for callers that need nothing else. */
export function hostDriver(opts: { mountRoot?: string } = {}): CgroupDriver {
  return openDriver(detectCgroups(opts));
}
