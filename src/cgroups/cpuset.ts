// The cpuset controller: which CPUs and memory nodes the tasks may use (cpuset.cpus, cpuset.mems,
// same names in v1 and v2).
import { dirname } from 'node:path';
import { readFiles, type Controller } from './controller.js';
import { readText, writeValue } from './fsio.js';

export const cpuset: Controller = {
  v1: 'cpuset',
  v2: 'cpuset',

  flags(r) {
    return [
      ...(r.cpu?.cpus !== undefined ? ['--cpuset-cpus'] : []),
      ...(r.cpu?.mems !== undefined ? ['--cpuset-mems'] : []),
    ];
  },

  applyV1: apply,
  applyV2: apply,
  limitsV1: (dir) => readFiles(dir, ['cpuset.cpus', 'cpuset.mems']),
  limitsV2: (dir) => readFiles(dir, ['cpuset.cpus', 'cpuset.mems', 'cpuset.cpus.effective', 'cpuset.mems.effective']),
};

function apply(dir: string, r: Parameters<Controller['applyV1']>[1]): void {
  if (r.cpu?.cpus !== undefined) writeValue(dir, 'cpuset.cpus', r.cpu.cpus);
  if (r.cpu?.mems !== undefined) writeValue(dir, 'cpuset.mems', r.cpu.mems);
}

/**
 * v1 quirk: a new cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and the kernel
 * refuses to let any task join it (ENOSPC) until both are set. Fill each directory from its
 * parent, top down, for every level tsrun's path passes through (`dirs`, parents first).
 * v2 has no such step: an empty cpuset there means "inherit".
 */
export function initCpusetChainV1(dirs: string[]): void {
  for (const dir of dirs) {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (readText(dir, file) === '') writeValue(dir, file, readText(dirname(dir), file));
    }
  }
}
