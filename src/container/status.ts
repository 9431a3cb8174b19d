// A container's status, derived from its files and checked against the kernel: a monitor that
// died (kill -9, reboot) must never leave a container reported as running. PID reuse is ruled
// out by the process start time, and a reboot by the boot ID.
import { readFileSync } from 'node:fs';
import { processStartTime, tokenAlive } from '../sys/proc.js';
import { TsrunError } from '../errors.js';
import { frozenInKernel } from '../cgroups/freezer.js';
import { readMonitorStatus, readState, type ContainerState, type MonitorStatus } from './record.js';
import type { ContainerPaths } from './paths.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead';

/** The docker state machine's checks, in one place (youki's `can_start` and friends). */
export const can = {
  start: (s: ContainerStatus) => s === 'created' || s === 'exited',
  stop: (s: ContainerStatus) => s === 'running' || s === 'paused' || s === 'restarting',
  kill: (s: ContainerStatus) => s === 'running' || s === 'paused' || s === 'restarting',
  exec: (s: ContainerStatus) => s === 'running',
  pause: (s: ContainerStatus) => s === 'running',
  unpause: (s: ContainerStatus) => s === 'paused',
  remove: (s: ContainerStatus) => s === 'created' || s === 'exited' || s === 'dead',
};

export { processStartTime } from '../sys/proc.js';

export class InvalidTransitionError extends TsrunError {
  constructor(
    readonly container: string,
    readonly from: ContainerStatus,
    action: string,
    hint: string,
  ) {
    super('ESTATE', `cannot ${action} container ${container}: it is ${from}${hint ? `; ${hint}` : ''}`);
  }
}

let bootId: string | undefined;
export function currentBootId(): string {
  bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return bootId;
}

export function monitorAlive(m: MonitorStatus, state: ContainerState): boolean {
  if (!m.monitorPid || (state.bootId !== null && state.bootId !== currentBootId())) return false;
  const started = processStartTime(m.monitorPid);
  return started !== undefined && started === m.monitorStartTime;
}

export interface Observed {
  status: ContainerStatus;
  state: ContainerState;
  monitor: MonitorStatus | undefined;
  /** Host PID of the container's first process while it runs, else 0. */
  pid: number;
  exitCode: number | null;
  /** The monitor vanished without recording an exit: its resources still need releasing. */
  orphaned: boolean;
  /** A live monitor is starting the container's first run: status says 'created', but it is not idle. */
  starting?: boolean;
}

export function observe(paths: ContainerPaths): Observed {
  const state = readState(paths);
  const monitor = readMonitorStatus(paths);
  if (state.startingBy) {
    // A start in progress owns the container; one that died (kill -9) left resources behind.
    const starting = tokenAlive(state.startingBy);
    const status = state.startedAt === null ? 'created' : 'exited';
    return { status, state, monitor, pid: 0, exitCode: state.exitCode, orphaned: !starting, starting };
  }
  if (!monitor || state.startedAt === null) {
    return { status: state.startedAt === null ? 'created' : 'exited', state, monitor, pid: 0, exitCode: state.exitCode, orphaned: false };
  }
  const alive = monitorAlive(monitor, state);
  if (alive && monitor.status === 'running') {
    // Paused is what the kernel says (a freeze outlives the command that made it), else the record.
    const paused = frozenInKernel(state.cgroupPaths) ?? state.paused;
    return { status: paused ? 'paused' : 'running', state, monitor, pid: monitor.pid, exitCode: null, orphaned: false };
  }
  if (alive && monitor.status !== 'exited') {
    // Between runs (a restart policy), or a first run not yet released: a live monitor owns the
    // container, so it is never reported exited, nor cleaned up under it.
    const status = monitor.status === 'restarting' || monitor.restartCount > 0 ? 'restarting' : 'created';
    return { status, state, monitor, pid: 0, exitCode: monitor.exitCode, orphaned: false, starting: status === 'created' };
  }
  if (monitor.status === 'exited') {
    return { status: 'exited', state, monitor, pid: 0, exitCode: monitor.exitCode ?? state.exitCode, orphaned: !state.cleanedUp };
  }
  // The monitor died while the container ran (kill -9, reboot). Nothing will record an exit,
  // so the container counts as exited; cleanup kills whatever is left in its cgroup.
  return { status: 'exited', state, monitor, pid: 0, exitCode: state.exitCode ?? 255, orphaned: !state.cleanedUp };
}
