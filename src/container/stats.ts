// stats and update: a running container's resource use read from its cgroup (and its veth for
// network I/O), and its limits changed in place.
import { readFileSync } from 'node:fs';
import { TsrunError } from '../errors.js';
import { detectCgroups, openDriver, parseResources, type CgroupStats, type ResourceFlags } from '../cgroups/index.js';
import { withLock } from '../sys/lock.js';
import type { OciSpec } from '../namespaces/spec.js';
import type { Found } from './lookup.js';
import { writeJsonAtomic } from './record.js';
import { InvalidTransitionError, observe } from './status.js';

export interface Sample {
  id: string;
  name: string;
  at: bigint;
  cgroup: CgroupStats;
  /** Bytes the container received and sent (its veth's host end counts them the other way). */
  netRx: number;
  netTx: number;
}

function counter(path: string): number {
  try {
    return Number(readFileSync(path, 'utf8'));
  } catch {
    return 0;
  }
}

/** One reading; undefined if the container is not running (or its cgroup is gone). */
export function sample(found: Found): Sample | undefined {
  const seen = observe(found.paths);
  if (seen.status !== 'running' && seen.status !== 'paused') return undefined;
  const cgroup = openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id);
  if (!cgroup) return undefined;
  const veth = seen.state.network?.hostVeth;
  return {
    id: found.record.id,
    name: found.record.name,
    at: process.hrtime.bigint(),
    cgroup: cgroup.stats(),
    netRx: veth ? counter(`/sys/class/net/${veth}/statistics/tx_bytes`) : 0,
    netTx: veth ? counter(`/sys/class/net/${veth}/statistics/rx_bytes`) : 0,
  };
}

export interface StatsRow {
  id: string;
  name: string;
  /** Percent of one CPU over the interval (200% = two CPUs busy), as docker shows it. */
  cpuPercent: number;
  memUsage: number;
  memLimit: number;
  memPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
}

export function statsRow(before: Sample, after: Sample): StatsRow {
  const wallNs = Number(after.at - before.at);
  const cpuNs = after.cgroup.cpuUsageNs - before.cgroup.cpuUsageNs;
  const c = after.cgroup;
  return {
    id: after.id,
    name: after.name,
    cpuPercent: wallNs > 0 ? Math.max(0, (cpuNs / wallNs) * 100) : 0,
    memUsage: c.memoryUsage,
    memLimit: c.memoryLimit,
    memPercent: c.memoryLimit > 0 ? (c.memoryUsage / c.memoryLimit) * 100 : 0,
    netRx: after.netRx,
    netTx: after.netTx,
    blockRead: c.blkioReadBytes,
    blockWrite: c.blkioWriteBytes,
    pids: c.pidsCurrent,
  };
}

/**
 * docker update: new limits for a running (or stopped) container, applied to its cgroup and kept
 * where `start` and `inspect` read them — the spec's linux.resources (config.json), one place.
 */
export async function updateContainer(found: Found, flags: ResourceFlags): Promise<void> {
  await withLock(found.paths.lock, () => {
    const change = parseResources(flags);
    const spec = JSON.parse(readFileSync(found.paths.config, 'utf8')) as OciSpec;
    const resources = mergeResources(spec.linux.resources, change);
    const seen = observe(found.paths);
    if (seen.status === 'running' || seen.status === 'paused') {
      const cgroup = openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id);
      if (!cgroup) throw new InvalidTransitionError(found.record.name, seen.status, 'update', 'its cgroup is gone');
      cgroup.update(change);
    }
    writeJsonAtomic(found.paths.config, { ...spec, linux: { ...spec.linux, resources } });
  });
}

function mergeResources<T extends object>(base: T, change: T): T {
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(change)) {
    const prev = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' ? { ...prev, ...v } : v;
  }
  if (Object.keys(change).length === 0) throw new TsrunError('EINVAL_FLAG', 'update needs at least one limit (--memory, --cpus, --pids-limit, ...)');
  return out as T;
}
