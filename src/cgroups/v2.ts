// The cgroup v2 driver: one unified hierarchy, one directory per container.
//
// A controller works in a cgroup only if every ancestor lists it in cgroup.subtree_control, and
// the kernel's "no internal processes" rule forbids enabling controllers in a non-root cgroup
// that holds processes itself. So tsrun enables what it needs from the root down to the parent
// (which only ever holds child cgroups), and the container's own leaf gets the processes.
//
//   /sys/fs/cgroup                 subtree_control: +cpu +io +memory +pids ...
//   └── tsrun                      subtree_control: +cpu +io +memory +pids ...  (no processes)
//       └── <id>                   memory.max, cpu.max, pids.max ...; cgroup.procs = the container
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TsrunError } from '../errors.js';
import { ioStatsV2 } from './blkio.js';
import { CONTROLLERS, checkId, childDir, killAll, mkdirLeaf, mkdirOnce, needed, parentParts, rmdirIfEmpty, rmdirRetry } from './common.js';
import type { Controller } from './controller.js';
import { cpuUsageV2 } from './cpu.js';
import { freezeV2, thawV2 } from './freezer.js';
import { exists, readOptional, readPids, subdirs, writeValue } from './fsio.js';
import { memoryStatsV2, oomKilledV2, withSwapDefault } from './memory.js';
import { pidsCurrent } from './pids.js';
import type { CgroupDriver, CgroupHandle, CgroupStats, Resources } from './types.js';

/** Enabled even when no limit asks for them, so that stats() has numbers to show. */
const FOR_STATS = ['cpu', 'io', 'memory', 'pids'];

const words = (text: string | undefined) => new Set((text ?? '').split(/\s+/).filter(Boolean));

export class V2Driver implements CgroupDriver {
  readonly version = 2;

  constructor(readonly root: string) {}

  // `devices`: on cgroup2 the helper attaches the device filter (native/devices.c).
  create(parent: string, id: string, r: Resources, _devices?: string[]): CgroupHandle {
    const parts = parentParts(parent);
    checkId(id);
    const required = new Map<string, string[]>([...needed(r)].map(([c, flags]) => [c.v2, flags]));
    const wanted = new Set([...required.keys(), ...FOR_STATS]);
    const chain = parts.map((_, i) => childDir(this.root, parts.slice(0, i + 1)));

    // First a dry run, so that a controller tsrun cannot have is reported before anything changes.
    this.delegate(chain, wanted, required, false);
    this.delegate(chain, wanted, required, true);

    const leaf = childDir(this.root, parts, id);
    const made = mkdirLeaf(leaf);
    const handle = new V2Handle(id, leaf);
    try {
      handle.apply(withSwapDefault(leaf, r, 2));
    } catch (err) {
      if (made) rmdirIfEmpty(leaf);
      throw err;
    }
    return handle;
  }

  /**
   * Enable the `wanted` controllers in cgroup.subtree_control of the root and of every directory
   * of `chain` (the parent's path), top down: a directory can only pass on what its own parent
   * passed to it. A `required` one that cannot be enabled is an error naming its flags; one
   * wanted only for stats is quietly gone without below that level. With `write`, also mkdir.
   */
  private delegate(chain: string[], wanted: Set<string>, required: Map<string, string[]>, write: boolean): void {
    let passed = new Set<string>(); // enabled by this walk one level up
    for (const dir of [this.root, ...chain]) {
      if (write && dir !== this.root) mkdirOnce(dir);
      const isNew = !existsSync(dir);
      const available = new Set([...passed, ...words(isNew ? '' : readOptional(dir, 'cgroup.controllers'))]);
      const enabled = words(isNew ? '' : readOptional(dir, 'cgroup.subtree_control'));
      const busy = dir !== this.root && !isNew && readPids(dir).length > 0;
      const next = new Set<string>();
      for (const c of wanted) {
        let problem: string | undefined;
        if (enabled.has(c)) {
          next.add(c);
          continue;
        } else if (!available.has(c)) {
          problem = dir === this.root
            ? `which is not available in ${dir}/cgroup.controllers`
            : `which is not enabled in ${dirname(dir)}/cgroup.subtree_control`;
        } else if (busy) {
          // The no-internal-processes rule: the kernel would refuse, and rightly.
          problem = `which tsrun cannot enable in ${dir}/cgroup.subtree_control because ${dir} has processes of its own (choose a --cgroup-parent without processes)`;
        } else {
          try {
            if (write) writeValue(dir, 'cgroup.subtree_control', `+${c}`);
            next.add(c);
            continue;
          } catch (err) {
            problem = `which could not be enabled: ${(err as Error).message}`;
          }
        }
        const flags = required.get(c);
        if (flags) throw new TsrunError('EKERNEL', `${flags.join(', ')} needs the ${c} controller, ${problem} (cgroup v2)`);
      }
      passed = next;
      wanted = next;
    }
  }

  open(parent: string, id: string): CgroupHandle | undefined {
    checkId(id);
    const leaf = childDir(this.root, parentParts(parent), id);
    return exists(leaf, 'cgroup.procs') ? new V2Handle(id, leaf) : undefined;
  }

  list(parent: string): string[] {
    return subdirs(childDir(this.root, parentParts(parent)));
  }

  removeParent(parent: string): boolean {
    return rmdirIfEmpty(childDir(this.root, parentParts(parent)));
  }
}

class V2Handle implements CgroupHandle {
  readonly version = 2;
  readonly paths: Record<string, string>;
  readonly procsFiles: string[];

  constructor(readonly id: string, readonly dir: string) {
    this.paths = { unified: dir };
    this.procsFiles = [join(dir, 'cgroup.procs')];
  }

  apply(r: Resources): void {
    const delegated = words(readOptional(this.dir, 'cgroup.controllers'));
    for (const [c, flags] of needed(r)) {
      if (!delegated.has(c.v2)) {
        throw new TsrunError('EKERNEL', `${flags.join(', ')} needs the ${c.v2} controller, which is not enabled in ${join(this.dir, '..')}/cgroup.subtree_control (cgroup v2)`);
      }
      c.applyV2(this.dir, r);
    }
  }

  update(r: Resources): void {
    this.apply(r);
  }

  stats(): CgroupStats {
    const mem = memoryStatsV2(this.dir);
    const io = ioStatsV2(this.dir);
    return {
      cpuUsageNs: cpuUsageV2(this.dir),
      memoryUsage: mem.usage,
      memoryLimit: mem.limit,
      pidsCurrent: pidsCurrent(this.dir),
      blkioReadBytes: io.read,
      blkioWriteBytes: io.write,
    };
  }

  oomKilled(): boolean {
    return oomKilledV2(this.dir);
  }

  pids(): number[] {
    return readPids(this.dir);
  }

  freeze(): void {
    this.requireFreeze();
    freezeV2(this.dir);
  }

  thaw(): void {
    this.requireFreeze();
    thawV2(this.dir);
  }

  private requireFreeze(): void {
    if (!exists(this.dir, 'cgroup.freeze')) {
      throw new TsrunError('EKERNEL', `freezing needs ${this.dir}/cgroup.freeze, which this kernel does not provide (Linux ≥ 5.2; cgroup v2)`);
    }
  }

  killAll(): void {
    const canFreeze = exists(this.dir, 'cgroup.freeze');
    killAll({
      dirs: [this.dir],
      killDir: this.dir,
      ...(canFreeze && { freeze: () => freezeV2(this.dir), thaw: () => thawV2(this.dir) }),
    });
  }

  remove(): void {
    this.killAll();
    rmdirRetry(this.dir);
  }

  limits(): Record<string, string> {
    return Object.assign({}, ...CONTROLLERS.map((c: Controller) => c.limitsV2(this.dir)));
  }
}
