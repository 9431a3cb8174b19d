// The host facts a unit test hands createSpec: root user, a 20000 open-files hard limit and no
// CAP_SYS_RESOURCE (like this VM), every capability, no cgroup mounts.
import { ALL_CAPABILITIES } from '../../src/namespaces/defaults.js';
import type { SpecContext } from '../../src/namespaces/spec.js';

export function specContext(id: string, rootfs: string): SpecContext {
  return {
    id,
    rootfs,
    user: { uid: 0, gid: 0, additionalGids: [], home: '/root' },
    etcFiles: { hostname: '/c/hostname', hosts: '/c/hosts', resolvConf: '/c/resolv.conf' },
    hostHardLimits: { nofile: 20000 },
    canRaiseLimits: false,
    hostCapabilities: ALL_CAPABILITIES,
    cgroupMounts: [],
    devices: [],
  };
}
