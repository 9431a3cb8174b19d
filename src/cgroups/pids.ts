// The pids controller: a ceiling on tasks (processes and threads), the fork-bomb stop.
// pids.max ("max" = unlimited) and pids.current, same names in v1 and v2.
import { readFiles, type Controller } from './controller.js';
import { readOptional, writeValue } from './fsio.js';
import type { Resources } from './types.js';

function apply(dir: string, r: Resources): void {
  if (r.pids === undefined) return;
  writeValue(dir, 'pids.max', r.pids.limit > 0 ? r.pids.limit : 'max');
}

export const pids: Controller = {
  v1: 'pids',
  v2: 'pids',
  flags: (r) => (r.pids !== undefined ? ['--pids-limit'] : []),
  applyV1: apply,
  applyV2: apply,
  limitsV1: (dir) => readFiles(dir, ['pids.max']),
  limitsV2: (dir) => readFiles(dir, ['pids.max']),
};

export function pidsCurrent(dir: string): number {
  return Number(readOptional(dir, 'pids.current') ?? 0);
}
