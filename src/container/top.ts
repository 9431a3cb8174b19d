// `tsrun top` (docker top): the container's processes as the host sees them. The pids come
// from the container's cgroup (every process it started, in any namespace), the columns from
// the host's `ps` (default `-ef`: UID PID PPID C STIME TTY TIME CMD), filtered to those pids
// by the PID column — what dockerd does.
import { execFileSync } from 'node:child_process';
import { TsrunError } from '../errors.js';
import { detectCgroups, openDriver } from '../cgroups/index.js';
import type { Found } from './lookup.js';
import { observe } from './status.js';

export interface TopResult {
  titles: string[];
  processes: string[][];
}

export function containerTop(found: Found, psArgs: string[] = ['-ef']): TopResult {
  const seen = observe(found.paths);
  if (seen.status !== 'running' && seen.status !== 'paused') {
    throw new TsrunError('ESTATE', `container ${found.record.name} is not running`);
  }
  const cgroup = openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id);
  const pids = cgroup?.pids() ?? [];
  if (pids.length === 0) return { titles: [], processes: [] };
  let output: string;
  try {
    output = execFileSync('ps', psArgs, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new TsrunError('EINVAL_FLAG', `ps ${psArgs.join(' ')} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
  return parsePs(output, new Set(pids));
}

/**
 * ps output → rows of the given pids. The last column (the command) may hold blanks, so a
 * line is split into as many fields as there are titles, the rest joined into the last.
 */
export function parsePs(output: string, pids: Set<number>): TopResult {
  const lines = output.split('\n').filter((l) => l.trim() !== '');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0) throw new TsrunError('EINVAL_FLAG', "couldn't find the PID field in the ps output");
  const processes: string[][] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    const row = [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')];
    if (pids.has(Number(row[pidIndex]))) processes.push(row);
  }
  return { titles, processes };
}
