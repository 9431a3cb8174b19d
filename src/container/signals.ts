// stop, kill, restart, wait: signals to a container's first process, with docker's semantics.
import { constants } from 'node:os';
import { writeFileNamed } from '../sys/atomic.js';
import { TsrunError, errnoOf } from '../errors.js';
import { detectCgroups, openDriver } from '../cgroups/index.js';
import { withLock } from '../sys/lock.js';
import { selfToken } from '../sys/proc.js';
import { cleanupContainer } from './cleanup.js';
import type { Found } from './lookup.js';
import { InvalidTransitionError, can, observe, type Observed } from './status.js';

/** SIGTERM, TERM, 15 → 'SIGTERM'. */
export function parseSignal(value: string): NodeJS.Signals {
  const upper = value.toUpperCase();
  if (/^\d+$/.test(upper)) {
    const entry = Object.entries(constants.signals).find(([, n]) => n === Number(upper));
    if (entry) return entry[0] as NodeJS.Signals;
  } else {
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
    if (name in constants.signals) return name as NodeJS.Signals;
  }
  throw new TsrunError('EINVAL_FLAG', `invalid signal: ${value}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the container is no longer running; true if it stopped within the time. */
export async function waitNotRunning(found: Found, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const s = observe(found.paths).status;
    if (s !== 'running' && s !== 'paused' && s !== 'restarting') return true;
    if (Date.now() >= deadline) return false;
    await sleep(delay);
  }
}

function sendSignal(seen: Observed, sig: NodeJS.Signals): void {
  if (!seen.pid) return;
  try {
    process.kill(seen.pid, sig);
  } catch {
    // exited in the meantime
  }
}

export async function killContainer(found: Found, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const seen = observe(found.paths);
  if (!can.kill(seen.status)) {
    throw new InvalidTransitionError(found.record.name, seen.status, 'kill', 'it is not running');
  }
  if (seen.status === 'paused' && sig !== 'SIGKILL') {
    throw new InvalidTransitionError(found.record.name, seen.status, `send ${sig} to`, 'unpause it first');
  }
  sendSignal(seen, sig);
  // A frozen task never gets its SIGKILL on cgroup v1: thaw it so it can die (as moby does).
  if (seen.status === 'paused') openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id)?.thaw();
}

/**
 * docker stop: the image's StopSignal (SIGTERM by default), then SIGKILL to everything in the
 * cgroup after `timeoutSec`. The monitor is told first, so a restart policy does not bring
 * the container back. Stopping a stopped container is not an error (docker's behaviour).
 */
export async function stopContainer(storeRoot: string, found: Found, timeoutSec = 10, signal?: NodeJS.Signals): Promise<void> {
  const seen = observe(found.paths);
  if (!can.stop(seen.status)) return;
  requestStop(found);
  if (seen.status === 'paused') {
    // A frozen process cannot act on SIGTERM: thaw it so it may.
    openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id)?.thaw();
  }
  sendSignal(seen, signal ?? parseSignal(found.record.stopSignal));
  if (!(await waitNotRunning(found, timeoutSec * 1000))) {
    openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id)?.killAll();
    sendSignal(observe(found.paths), 'SIGKILL');
    await waitNotRunning(found, 10_000);
  }
  await cleanupContainer(storeRoot, found.record.id, { autoRemove: true });
}

/**
 * Tell the monitor the container is being stopped on purpose: its restart policy must not bring
 * it back. The file names this process: while it runs, the monitor leaves the cleanup to it
 * (native/lifecycle.c), and runs its exit command if this process is gone.
 */
export function requestStop(found: Found): void {
  try {
    writeFileNamed(found.paths.stopFile, `${selfToken()}\n`);
  } catch (err) {
    // A full disk has no block for the name; an empty file needs none. It stops the restarts
    // all the same, and names nobody: the monitor runs its exit command (a cleanup more).
    if (errnoOf(err) !== 'ENOSPC' && errnoOf(err) !== 'EDQUOT') throw err;
    writeFileNamed(found.paths.stopFile, '');
  }
}

/** docker wait: block until the container stops; its exit code. */
export async function waitContainer(found: Found): Promise<number> {
  for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
    const seen = observe(found.paths);
    if (seen.status === 'exited' || seen.status === 'dead') return seen.exitCode ?? 0;
    if (seen.status === 'created') {
      throw new InvalidTransitionError(found.record.name, seen.status, 'wait for', 'start it first');
    }
    await sleep(delay);
  }
}

export async function pauseContainer(found: Found, pause: boolean): Promise<void> {
  await withLock(found.paths.lock, async () => {
    const seen = observe(found.paths);
    if (pause ? !can.pause(seen.status) : !can.unpause(seen.status)) {
      throw new InvalidTransitionError(found.record.name, seen.status, pause ? 'pause' : 'unpause', '');
    }
    const cgroup = openDriver(detectCgroups()).open(found.record.options.cgroupParent, found.record.id);
    if (!cgroup) throw new TsrunError('ESTATE', `container ${found.record.name} has no cgroup to freeze`);
    if (pause) cgroup.freeze();
    else cgroup.thaw();
    const { updateState } = await import('./record.js');
    updateState(found.paths, { paused: pause });
  });
}
