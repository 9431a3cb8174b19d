// Two documents of runc's command line: `features` (the runtime spec's features.md: what this
// runtime does, so that a caller need not guess) and `spec` (a starting config.json).
import { ALL_CAPABILITIES, MASKED_PATHS, READONLY_PATHS } from '../namespaces/defaults.js';

export const SPEC_VERSION = '1.2.0';

/** Everything here is honoured; what a bundle asks beyond it is refused at `create` (bundle.ts). */
export function features(version: string): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: SPEC_VERSION,
    hooks: ['prestart', 'createRuntime', 'poststart', 'poststop'],
    mountOptions: [
      'bind', 'rbind', 'ro', 'rw', 'nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec',
      'relatime', 'strictatime', 'noatime', 'private', 'rprivate', 'slave', 'rslave',
    ],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
      capabilities: [...ALL_CAPABILITIES],
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false, rdma: false },
      seccomp: {
        enabled: true,
        actions: ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE', 'SCMP_ACT_TRAP'],
        operators: ['SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_LE', 'SCMP_CMP_LT', 'SCMP_CMP_MASKED_EQ', 'SCMP_CMP_NE'],
        archs: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
        knownFlags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
        supportedFlags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
      },
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
    annotations: { 'io.github.tsrun.version': version, 'org.opencontainers.runc.checkpoint.enabled': 'false' },
  };
}

/** runc's `spec`: a starting point that runs `sh` in ./rootfs with a terminal. */
export function defaultSpec(): Record<string, unknown> {
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
  return {
    ociVersion: SPEC_VERSION,
    process: {
      terminal: true,
      user: { uid: 0, gid: 0 },
      args: ['sh'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
      cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'tsrun',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type })),
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
    },
  };
}
