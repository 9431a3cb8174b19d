// How a container is made, for both halves: tsrun's own `start` (src/container/start.ts) and
// tsrun-runtime's `create`/`run` (container.ts) come through here. The spec is what decides:
// its cgroup is made from linux.resources (and the device rules in it) before the container's
// first instruction, and its launch plan from the whole spec; then the helper is started and
// reports the container's pid. What each half adds around it (the engine's network endpoint
// and monitor, the runtime's hooks and exec fifo) is the caller's.
import { errnoOf } from '../errors.js';
import type { CgroupDriver, CgroupHandle } from '../cgroups/index.js';
import { allowList } from '../namespaces/devices.js';
import { statSync } from 'node:fs';
import { HelperProcess, type ExitStatus, type LaunchIO } from '../namespaces/helper.js';
import { buildPlan, type PlanContext } from '../namespaces/plan.js';
import type { OciSpec } from '../namespaces/spec.js';

/** Where the cgroup goes: <parent>/<name> in every hierarchy. */
export interface CgroupPlace {
  parent: string;
  name: string;
}

/**
 * The container's cgroup with the spec's limits and device rules. Another process may remove
 * the (empty) parent between our mkdir of it and of the leaf: the leaf's mkdir then fails with
 * ENOENT, and another attempt makes the parent again.
 */
export function makeCgroup(driver: CgroupDriver, place: CgroupPlace, spec: OciSpec): CgroupHandle {
  const devices = spec.linux.resources.devices && allowList(spec.linux.resources.devices);
  for (let attempt = 0; ; attempt++) {
    try {
      return driver.create(place.parent, place.name, spec.linux.resources, devices);
    } catch (err) {
      const code = errnoOf(err) ?? errnoOf((err as { cause?: unknown }).cause);
      if (code !== 'ENOENT' || attempt >= 3) throw err;
    }
  }
}

export interface Launched {
  helper: HelperProcess;
  /** Host pid of the container's first process, waiting for `go`. */
  pid: number;
}

/** The plan for `spec` in `cgroup`, and the helper that carries it out, up to the container's pid. */
export async function startHelper(
  spec: OciSpec,
  ctx: Omit<PlanContext, 'cgroupProcs'>,
  cgroup: CgroupHandle | undefined,
  io: LaunchIO,
  undo: Array<() => void | Promise<void>>,
): Promise<Launched> {
  const plan = buildPlan(spec, { ...ctx, cgroupProcs: cgroup?.procsFiles ?? [] }, isFile);
  const helper = HelperProcess.launch(plan, io);
  undo.push(() => helper.signal('SIGKILL'));
  return { helper, pid: await helper.waitPid() };
}

/** Whether a bind mount's source is a file (its target is then made a file, not a directory). */
function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A foreground container's exit, the signals we get meanwhile passed on to it (runc run, exec). */
export async function waitForwarding(helper: HelperProcess): Promise<ExitStatus> {
  const forward = (sig: NodeJS.Signals) => helper.signal(sig);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
  for (const s of signals) process.on(s, forward);
  try {
    return await helper.waitExit();
  } finally {
    for (const s of signals) process.off(s, forward);
  }
}
