// The cgroup v1 driver: one hierarchy per controller (or per group of co-mounted controllers,
// like "cpu,cpuacct"), so a container has one directory in each:
//
//   /sys/fs/cgroup/memory/tsrun/<id>     memory.limit_in_bytes ...
//   /sys/fs/cgroup/cpu/tsrun/<id>        cpu.cfs_quota_us ...
//   /sys/fs/cgroup/pids/tsrun/<id>       pids.max ...
//   ...and on a hybrid host also /sys/fs/cgroup/unified/tsrun/<id> (no limits there: it gives
//   cgroup.kill and tracks membership the way systemd expects; runc joins it too).
//
// The container's pid goes into cgroup.procs of every one of them (procsFiles).
import { join } from 'node:path';
import { TsrunError } from '../errors.js';
import { blkioStatsV1 } from './blkio.js';
import { CONTROLLERS, allPids, checkId, childDir, killAll, mkdirLeaf, mkdirOnce, needed, parentParts, rmdirIfEmpty, rmdirRetry } from './common.js';
import { cpuUsageV1, cpuUsageV2 } from './cpu.js';
import { initCpusetChainV1 } from './cpuset.js';
import { freezeV1, freezeV2, thawV1, thawV2 } from './freezer.js';
import { exists, subdirs as subdirsOf, writeValue } from './fsio.js';
import { memoryStatsV1, oomKilledV1, withSwapDefault } from './memory.js';
import { pidsCurrent } from './pids.js';
import type { CgroupDriver, CgroupHandle, CgroupLayout, CgroupStats, Resources } from './types.js';

/**
 * The hierarchies a container joins: every limiting controller's (the table in common.ts), the
 * ones tsrun reads from (cpuacct for stats), freezes with (freezer) and confines devices with;
 * not net_cls, perf_event or name=systemd.
 */
const JOINED = [...new Set([...CONTROLLERS.map((c) => c.v1), 'cpuacct', 'freezer', 'devices'])];

/** Deny everything, then allow each rule: `c:1:3:rwm` → `c 1:3 rwm` (devices.allow's syntax). */
export function deviceRulesV1(rules: string[]): string[] {
  return rules.map((r) => {
    const [type, major, minor, access] = r.split(':');
    return `${type} ${major}:${minor} ${access}`;
  });
}

function writeDeviceRulesV1(dir: string, rules: string[]): void {
  writeValue(dir, 'devices.deny', 'a');
  for (const line of deviceRulesV1(rules)) writeValue(dir, 'devices.allow', line);
}

export class V1Driver implements CgroupDriver {
  readonly version = 1;
  /** Controller → mount point, for the controllers tsrun joins. */
  private readonly mounts: Record<string, string> = {};

  constructor(private readonly layout: CgroupLayout) {
    for (const c of JOINED) {
      const m = layout.v1[c];
      if (m !== undefined) this.mounts[c] = m;
    }
  }

  /** Mount points without repeats (co-mounted controllers share one), plus the cgroup2 one. */
  private roots(): string[] {
    return [...new Set(Object.values(this.mounts)), ...(this.layout.unified ? [this.layout.unified] : [])];
  }

  private where(): string {
    const unified = this.layout.unified ? `; the cgroup2 mount at ${this.layout.unified} carries no limits here` : '';
    return `(cgroup v1${unified})`;
  }

  private pathsFor(parts: string[], id: string): Record<string, string> {
    const paths: Record<string, string> = {};
    for (const [c, m] of Object.entries(this.mounts)) paths[c] = childDir(m, parts, id);
    if (this.layout.unified) paths.unified = childDir(this.layout.unified, parts, id);
    return paths;
  }

  create(parent: string, id: string, r: Resources, devices?: string[]): CgroupHandle {
    const parts = parentParts(parent);
    checkId(id);
    // Check every controller before touching anything.
    for (const [c, flags] of needed(r)) {
      if (this.mounts[c.v1] === undefined) {
        throw new TsrunError('EKERNEL', `${flags.join(', ')} needs the ${c.v1} controller, which is not mounted under ${this.layout.mountRoot} ${this.where()}`);
      }
    }

    const made: string[] = [];
    const handle = new V1Handle(id, this.pathsFor(parts, id), this.layout.unified !== undefined);
    try {
      for (const root of this.roots()) {
        let dir = root;
        const chain: string[] = [];
        for (const p of parts) {
          dir = join(dir, p);
          mkdirOnce(dir);
          chain.push(dir);
        }
        const leaf = join(dir, id);
        if (mkdirLeaf(leaf)) made.push(leaf);
        chain.push(leaf);
        if (root === this.mounts.cpuset) initCpusetChainV1(chain);
      }
      if (devices && handle.paths.devices) writeDeviceRulesV1(handle.paths.devices, devices);
      handle.apply(r, true);
    } catch (err) {
      for (const dir of made.reverse()) rmdirIfEmpty(dir);
      throw err;
    }
    return handle;
  }

  open(parent: string, id: string): CgroupHandle | undefined {
    checkId(id);
    const paths = this.pathsFor(parentParts(parent), id);
    const any = Object.values(paths).some((d) => exists(d, 'cgroup.procs'));
    return any ? new V1Handle(id, paths, this.layout.unified !== undefined) : undefined;
  }

  list(parent: string): string[] {
    const parts = parentParts(parent);
    const ids = new Set<string>();
    for (const root of this.roots()) for (const id of subdirsOf(childDir(root, parts))) ids.add(id);
    return [...ids].sort();
  }

  removeParent(parent: string): boolean {
    const parts = parentParts(parent);
    return this.roots().map((root) => rmdirIfEmpty(childDir(root, parts))).every(Boolean);
  }
}

class V1Handle implements CgroupHandle {
  readonly version = 1;
  readonly procsFiles: string[];
  private readonly dirs: string[];

  constructor(
    readonly id: string,
    readonly paths: Record<string, string>,
    private readonly hybrid: boolean,
  ) {
    this.dirs = [...new Set(Object.values(paths))];
    this.procsFiles = this.dirs.map((d) => join(d, 'cgroup.procs'));
  }

  /** Apply `r`; when creating, with docker's swap default (see withSwapDefault). */
  apply(r: Resources, creating = false): void {
    if (creating && this.paths.memory) r = withSwapDefault(this.paths.memory, r, 1);
    for (const [c, flags] of needed(r)) {
      const dir = this.paths[c.v1];
      if (dir === undefined) throw new TsrunError('EKERNEL', `${flags.join(', ')} needs the ${c.v1} controller, which is not mounted (cgroup v1)`);
      c.applyV1(dir, r);
    }
  }

  update(r: Resources): void {
    this.apply(r);
  }

  stats(): CgroupStats {
    const p = this.paths;
    // Without cpuacct, the cgroup2 mount of a hybrid host still counts CPU time (cpu.stat).
    const cpuUsageNs = p.cpuacct ? cpuUsageV1(p.cpuacct) : p.unified ? cpuUsageV2(p.unified) : 0;
    const mem = p.memory ? memoryStatsV1(p.memory) : { usage: 0, limit: 0 };
    const io = p.blkio ? blkioStatsV1(p.blkio) : { read: 0, write: 0 };
    return {
      cpuUsageNs,
      memoryUsage: mem.usage,
      memoryLimit: mem.limit,
      pidsCurrent: p.pids ? pidsCurrent(p.pids) : 0,
      blkioReadBytes: io.read,
      blkioWriteBytes: io.write,
    };
  }

  oomKilled(): boolean {
    return this.paths.memory ? oomKilledV1(this.paths.memory) : false;
  }

  pids(): number[] {
    return allPids(this.dirs);
  }

  /** v1 freezer, or cgroup.freeze of the cgroup2 mount on a hybrid host without it. */
  private freezer(): { freeze: () => void; thaw: () => void } | undefined {
    const f = this.paths.freezer;
    if (f) return { freeze: () => freezeV1(f), thaw: () => thawV1(f) };
    const u = this.paths.unified;
    if (u && exists(u, 'cgroup.freeze')) return { freeze: () => freezeV2(u), thaw: () => thawV2(u) };
    return undefined;
  }

  freeze(): void {
    this.requireFreezer().freeze();
  }

  thaw(): void {
    this.requireFreezer().thaw();
  }

  private requireFreezer() {
    const f = this.freezer();
    if (!f) throw new TsrunError('EKERNEL', `freezing needs the freezer controller, which is not mounted (cgroup v1${this.hybrid ? ', and the cgroup2 mount has no cgroup.freeze' : ''})`);
    return f;
  }

  killAll(): void {
    killAll({ dirs: this.dirs, ...(this.paths.unified && { killDir: this.paths.unified }), ...this.freezer() });
  }

  remove(): void {
    this.killAll();
    for (const dir of this.dirs) rmdirRetry(dir);
  }

  limits(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of CONTROLLERS) {
      const dir = this.paths[c.v1];
      if (dir) Object.assign(out, c.limitsV1(dir));
    }
    return out;
  }
}
