// The shapes shared by both drivers. `Resources` is a subset of the OCI runtime spec's
// `linux.resources` with the same field names and meanings, so it can go into config.json as is.

export interface ThrottleDevice {
  major: number;
  minor: number;
  /** Bytes or operations per second; 0 removes the limit. */
  rate: number;
}

/** OCI linux.resources.devices[]: `allow` or deny `access` to devices of `type`, `major`:`minor` (absent: any). */
export interface DeviceRule {
  allow: boolean;
  type?: 'a' | 'b' | 'c';
  major?: number;
  minor?: number;
  /** A combination of r (read), w (write), m (mknod). */
  access?: string;
}

export interface Resources {
  memory?: {
    /** Bytes; -1 = unlimited. */
    limit?: number;
    /** Soft limit in bytes (v1 memory.soft_limit_in_bytes, v2 memory.low). */
    reservation?: number;
    /** Memory + swap in bytes (docker's --memory-swap); -1 = unlimited swap. */
    swap?: number;
  };
  cpu?: {
    /** Relative weight, 2–262144 (v1 cpu.shares; v2 cpu.weight by runc's formula). */
    shares?: number;
    /** µs of CPU time per period; -1 = unlimited. */
    quota?: number;
    /** µs, 1000–1000000. */
    period?: number;
    /** cpuset list ("0-2,4"). */
    cpus?: string;
    mems?: string;
  };
  pids?: {
    /** Maximum number of tasks; ≤ 0 = unlimited. */
    limit: number;
  };
  blockIO?: {
    /** 10–1000 (docker's --blkio-weight). */
    weight?: number;
    throttleReadBpsDevice?: ThrottleDevice[];
    throttleWriteBpsDevice?: ThrottleDevice[];
    throttleReadIOPSDevice?: ThrottleDevice[];
    throttleWriteIOPSDevice?: ThrottleDevice[];
  };
  /** The device cgroup's rules (src/namespaces/devices.ts); absent: every device (--privileged). */
  devices?: DeviceRule[];
}

export interface CgroupStats {
  /** Total CPU time of all tasks, ns (v1 cpuacct.usage, v2 cpu.stat usage_usec × 1000). */
  cpuUsageNs: number;
  /** Bytes in use without inactive page cache, as docker stats shows it. */
  memoryUsage: number;
  /** The memory limit in bytes, or the host's total memory when unlimited. */
  memoryLimit: number;
  pidsCurrent: number;
  blkioReadBytes: number;
  blkioWriteBytes: number;
}

export interface CgroupLayout {
  /** 'v2': /sys/fs/cgroup is cgroup2. 'hybrid': v1 controllers plus a cgroup2 mount beside them. */
  mode: 'v2' | 'hybrid' | 'v1';
  mountRoot: string;
  /** v1 and hybrid: controller → mount point of its hierarchy (co-mounted ones share it). */
  v1: Record<string, string>;
  /** v2: the root itself; hybrid: the cgroup2 mount (limits still go to v1). */
  unified?: string;
}

export interface CgroupHandle {
  readonly version: 1 | 2;
  readonly id: string;
  /** Controller → this container's directory in its hierarchy ('unified' for cgroup2). */
  readonly paths: Record<string, string>;
  /** Every cgroup.procs the container's first pid must be written to before it runs. */
  readonly procsFiles: string[];
  /** Apply the fields present in `r` (others are left alone). */
  update(r: Resources): void;
  stats(): CgroupStats;
  /** Whether the kernel's OOM killer killed a task in this cgroup. */
  oomKilled(): boolean;
  /** Pids currently in the cgroup (union over hierarchies). */
  pids(): number[];
  /** Returns once every task is frozen. */
  freeze(): void;
  thaw(): void;
  /** SIGKILL every task and wait until the cgroup is empty. */
  killAll(): void;
  /** killAll, then rmdir in every hierarchy (retrying briefly while the kernel lets go). */
  remove(): void;
  /** Interface file → value in force, for inspect. */
  limits(): Record<string, string>;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Make <parent>/<id> in every hierarchy, apply `r`; undone if anything fails. */
  /**
   * `devices`: the allowlist (`c:1:3:rwm`, devices.ts allowList()), all else refused. cgroup
   * v1 writes it to the devices controller; on cgroup2 the helper attaches a BPF program.
   */
  create(parent: string, id: string, r: Resources, devices?: string[]): CgroupHandle;
  /** The existing cgroup <parent>/<id>, or undefined. */
  open(parent: string, id: string): CgroupHandle | undefined;
  /** Ids with a cgroup under the parent (to clean up after a crash). */
  list(parent: string): string[];
  /** rmdir the parent itself if it is empty (tests, `tsrun system prune`); never its ancestors. */
  removeParent(parent: string): void;
}
